"""Who may call what: an API key in the X-API-Key header, checked before any other work.

- /score and /score_batch need a key with the `score` scope: no key or an unknown key gets a
  401, a key without the scope a 403, both as JSON.
- /livez, /readyz and the OpenAPI page stay open: probes carry no keys, and the API contract
  is public.
- /metrics is open to the `metrics_networks` setting's networks (default: loopback, where
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
from pathlib import Path

from credit_risk import api_keys
from credit_risk.middleware.responses import refuse

HEADER = b"x-api-key"
SCOPE_KEY_ID = "credit_risk.key_id"  # where the caller's key id travels in the ASGI scope
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
        self.records = api_keys.read(path)
        self.checked_at = clock()

    def file_stamp(self):
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return None
        return status.st_mtime_ns, status.st_size, status.st_ino

    def lookup(self, presented: str) -> api_keys.KeyRecord | None:
        if self.clock() - self.checked_at >= 1:
            self.checked_at = self.clock()
            if (stamp := self.file_stamp()) != self.stamp:
                try:
                    self.records, self.stamp = api_keys.read(self.path), stamp
                except ValueError as error:  # keep serving with the keys read last
                    logger.error("keys file not reloaded: %s", error)
        return api_keys.verify(self.records, presented)


def configured(keys_file: Path, anonymous: bool) -> KeyStore:
    """The key store; raises NoKeysConfigured (one line saying how to fix it) when there is
    no key and anonymous access was not asked for, ValueError naming a malformed line."""
    store = KeyStore(keys_file)
    if not store.records and not anonymous:
        raise NoKeysConfigured(
            f"no API keys in {store.path}: mint one with `python -m ops.api_keys new --id "
            f"<client> --scope score`, point CREDIT_RISK_API_KEYS_FILE at your keys file, or "
            f"set CREDIT_RISK_ALLOW_ANONYMOUS=1 to serve without authentication (local demos "
            f"only)")
    if anonymous:
        logger.warning("CREDIT_RISK_ALLOW_ANONYMOUS=1: requests without an API key are served, "
                       "the model routes are unauthenticated")
    return store


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

    def __init__(self, app, keys_file: Path, anonymous: bool, metrics_networks: list) -> None:
        self.app = app
        self.store = configured(keys_file, anonymous)
        self.anonymous = anonymous
        self.metrics_networks = metrics_networks

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
            return await refuse(
                scope, receive, send, 401, "unauthenticated",
                "A valid API key is required in the X-API-Key header.", UNAUTHENTICATED)
        scope[SCOPE_KEY_ID] = record.key_id  # for the audit log and the rate limit
        needed = SCOPE_OF.get(path)
        if needed is not None and needed not in record.scopes:
            return await refuse(
                scope, receive, send, 403, "forbidden",
                f"This API key lacks the '{needed}' scope.")
        await self.app(scope, receive, send)
