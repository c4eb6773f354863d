"""Who may call what: an API key in the X-API-Key header, checked before any other work.

- /score and /score_batch need a key with the `score` scope: no key or an unknown key gets a
  401, a key without the scope a 403, both as JSON.
- /livez, /readyz and the OpenAPI page stay open: probes carry no keys, and the API contract
  is public.
- /metrics is open to the networks in CREDIT_RISK_METRICS_NETWORKS (default: loopback, where
  a local Prometheus scrapes; in a cluster, the pod network) and needs a key with the
  `metrics` scope from anywhere else. It holds counts and the model version, never personal
  data or key ids, but traffic volume and decision rates are not for the public.
- Anything else needs a valid key of any scope before it even learns whether the path exists.

Fail closed: with no keys configured, `bentoml serve` refuses to start (service.py calls
`configured()` before any worker starts), unless CREDIT_RISK_ALLOW_ANONYMOUS=1 lets requests
without a key through, for local demos, notebooks and benchmarks. A key that is sent is still
checked. The key never reaches a log: only its key id travels on, in the ASGI scope.
"""

import ipaddress
import logging
import os
import time

import keys
import monitoring

HEADER = b"x-api-key"
KEY_ID = "credit_risk.key_id"  # where the caller's key id travels in the ASGI scope
ANONYMOUS_ENV = "CREDIT_RISK_ALLOW_ANONYMOUS"
METRICS_NETWORKS_ENV = "CREDIT_RISK_METRICS_NETWORKS"
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/", "/docs.json", "/schema.json"})
OPEN_PREFIXES = ("/static_content/",)  # the OpenAPI page's scripts and styles
SCOPE_OF = {"/score": "score", "/score_batch": "score", "/metrics": "metrics"}
UNAUTHENTICATED = {"WWW-Authenticate": 'ApiKey realm="credit-risk", header="X-API-Key"'}

logger = logging.getLogger("credit_risk.auth")


class NoKeysConfigured(RuntimeError):
    pass


class KeyStore:
    """The keys file, read again when it changes (looked at once a second at most), so a
    revoked or new key takes effect without a restart."""

    def __init__(self, path, clock=time.monotonic) -> None:
        self.path, self.clock = path, clock
        self.stamp = self.file_stamp()
        self.records = keys.read(path)
        self.checked_at = clock()

    def file_stamp(self):
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return None
        return status.st_mtime_ns, status.st_size, status.st_ino

    def lookup(self, presented: str) -> keys.KeyRecord | None:
        if self.clock() - self.checked_at >= 1:
            self.checked_at = self.clock()
            if (stamp := self.file_stamp()) != self.stamp:
                try:
                    self.records, self.stamp = keys.read(self.path), stamp
                except ValueError as error:  # keep serving with the keys read last
                    logger.error("keys file not reloaded: %s", error)
        return keys.verify(self.records, presented)


def configured() -> tuple[KeyStore, bool]:
    """The key store and whether requests without a key are let through.

    Raises NoKeysConfigured (one line saying how to fix it) when there is no key and
    anonymous access was not asked for; ValueError names a malformed line of the file.
    """
    store = KeyStore(keys.keys_file())
    anonymous = os.environ.get(ANONYMOUS_ENV) == "1"
    if not store.records and not anonymous:
        raise NoKeysConfigured(
            f"no API keys in {store.path}: mint one with `python keys.py new --id <client> "
            f"--scope score`, point {keys.KEYS_FILE_ENV} at your keys file, or set "
            f"{ANONYMOUS_ENV}=1 to serve without authentication (local demos only)")
    if anonymous:
        logger.warning("%s=1: requests without an API key are served, the model routes are "
                       "unauthenticated", ANONYMOUS_ENV)
    return store, anonymous


def networks(spec: str) -> list:
    return [ipaddress.ip_network(part.strip()) for part in spec.split(",") if part.strip()]


def from_networks(client, allowed: list) -> bool:
    """Whether the peer address (not a forwarded header, which a client can forge) is in
    `allowed`. Behind a reverse proxy on the same host every peer is the proxy: do not
    proxy /metrics then."""
    try:
        address = ipaddress.ip_address(client[0])
    except (TypeError, ValueError, IndexError):  # no peer, or a test client's name
        return False
    return any(address in network for network in allowed)


def header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class RequireApiKey:
    """ASGI middleware: 401 without a valid key, 403 without the route's scope."""

    def __init__(self, app) -> None:
        self.app = app
        self.store, self.anonymous = configured()
        self.metrics_networks = networks(
            os.environ.get(METRICS_NETWORKS_ENV, "127.0.0.0/8,::1/128"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or is_open(scope["path"]):
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/metrics" and from_networks(scope.get("client"), self.metrics_networks):
            return await self.app(scope, receive, send)
        presented = header(scope, HEADER)
        if presented is None and self.anonymous:
            return await self.app(scope, receive, send)
        record = self.store.lookup(presented) if presented else None
        if record is None:
            return await monitoring.refuse(
                scope, receive, send, 401, "unauthenticated",
                "A valid API key is required in the X-API-Key header.", UNAUTHENTICATED)
        scope[KEY_ID] = record.key_id  # for the audit log and the rate limit
        needed = SCOPE_OF.get(path)
        if needed is not None and needed not in record.scopes:
            return await monitoring.refuse(
                scope, receive, send, 403, "forbidden",
                f"This API key lacks the '{needed}' scope.")
        await self.app(scope, receive, send)
