"""Per-client limits: how often a key may call (429), how big a request may be (413) and in
which form (415: JSON only).

Each answers at once with a JSON error and never reach the model, so one client's excess does
not slow down the others. Server overload is a different thing, answered 503 by overload.py.

- Rate: a token bucket per key id, refilled at CREDIT_RISK_RATE_LIMIT_PER_S (default 50)
  up to CREDIT_RISK_RATE_BURST (default 100) tokens; each request takes one, and a request
  finding none gets a 429 with Retry-After. The buckets live in each worker process, so a
  key's limit is per worker and per replica: with 2 workers on 3 replicas a key gets up to
  6 x 50/s. For one limit across replicas, rate-limit at the proxy or in a shared store.
  0 turns the limit off. Requests without a key (anonymous mode) are not limited.
- Size: CREDIT_RISK_MAX_BODY_BYTES (default 1 MiB; a full batch of 500 applications is
  about 130 kB). A larger Content-Length is refused before the body is read; a body without
  one (chunked) is read up to the limit and refused as soon as it passes it.
- Form: the scoring routes take JSON. BentoML would also parse form and multipart bodies
  (and answers a multipart type without a boundary with a 500); refusing them keeps that
  parser, and its bugs, out of reach. No Content-Type at all is read as JSON.
"""

import math
import os
import time

import auth
import monitoring

RATE_PER_S = float(os.environ.get("CREDIT_RISK_RATE_LIMIT_PER_S", "50"))
BURST = int(os.environ.get("CREDIT_RISK_RATE_BURST", "100"))
MAX_BODY_BYTES = int(os.environ.get("CREDIT_RISK_MAX_BODY_BYTES", str(2**20)))
NOT_LIMITED = frozenset({"/livez", "/readyz", "/healthz"})


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: int, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self.tokens, self.updated = float(burst), clock()

    def take(self) -> float:
        """Take a token: 0 if there was one, else the seconds until there will be."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimitPerKey:
    """ASGI middleware, inside auth.RequireApiKey (which names the key)."""

    def __init__(self, app, rate_per_s: float = RATE_PER_S, burst: int = BURST,
                 clock=time.monotonic) -> None:
        self.app = app
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self.buckets: dict[str, TokenBucket] = {}  # one per key id: bounded by the keys file

    async def __call__(self, scope, receive, send):
        key_id = scope.get(auth.KEY_ID)
        if (scope["type"] != "http" or key_id is None or self.rate <= 0
                or scope["path"] in NOT_LIMITED):
            return await self.app(scope, receive, send)
        bucket = self.buckets.get(key_id)
        if bucket is None:
            bucket = self.buckets[key_id] = TokenBucket(self.rate, self.burst, self.clock)
        if wait := bucket.take():
            return await monitoring.refuse(
                scope, receive, send, 429, "rate_limited",
                "Too many requests for this API key; retry after the Retry-After seconds.",
                {"Retry-After": str(math.ceil(wait))})
        await self.app(scope, receive, send)


class JsonOnly:
    """ASGI middleware: 415 for a POST whose Content-Type is not application/json."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            media_type = (auth.header(scope, b"content-type") or "application/json")
            if media_type.partition(";")[0].strip().lower() != "application/json":
                return await monitoring.refuse(
                    scope, receive, send, 415, "unsupported_media_type",
                    "Send the request body as JSON, with Content-Type: application/json.")
        await self.app(scope, receive, send)


class LimitBodySize:
    """ASGI middleware: 413 for a request body over `max_bytes`, announced or not."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = auth.header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self.too_large(scope, receive, send)
        # Read the body here, up to the limit, and hand it on whole: BentoML reads the whole
        # body anyway, and this catches chunked bodies and a Content-Length that lies.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self.too_large(scope, receive, send)
            if not message.get("more_body", False):
                break
        body, handed_on = b"".join(chunks), False

        async def replay():
            nonlocal handed_on
            if handed_on:
                return await receive()  # after the body: wait for a disconnect, as usual
            handed_on = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def too_large(self, scope, receive, send):
        return await monitoring.refuse(
            scope, receive, send, 413, "too_large",
            f"The request body exceeds {self.max_bytes} bytes.")
