"""Per-client limits: how often a key may call (429), how big a request may be (413 for the
body, 431 for the headers), how long its body may take to arrive (408) and in which form
(415: JSON only).

Each answers at once with a JSON error and never reaches the model, so one client's excess
does not slow down the others. Server overload is a different thing, answered 503 by
overload.py. The numbers come from the settings (credit_risk/settings.py).

- Rate: a token bucket per key id, refilled at `rate_limit_per_s` up to `rate_burst`
  tokens; each request takes one, and a request
  finding none gets a 429 with Retry-After. The buckets live in each worker process, so a
  key's limit is per worker and per replica: with 2 workers on 3 replicas a key gets up to
  6 x 50/s. For one limit across replicas, rate-limit at the proxy or in a shared store.
  0 turns the limit off. Requests without a key (anonymous mode) are not limited.
- Size: `max_body_bytes` (default 1 MiB; a full batch of 500 applications is about
  130 kB). A larger Content-Length is refused before the body is read; a body without
  one (chunked) is read up to the limit and refused as soon as it passes it. The whole body
  is read here, before the request counts as in flight (overload.py sits inside this
  layer): a client that announces a body and sends it slowly, or never, waits outside the
  `max_in_flight` slots, and after `body_timeout_s` gets a 408 and its connection closed.
  Otherwise about as many such connections as there are slots would get every other
  client a 503 (tests/served/test_slow_clients.py opens 150 of them).
- Headers: `max_header_bytes` (default 16 KiB) over the names and values of all headers;
  above it a 431. Uvicorn, under BentoML, sets no limit of its own with httptools.
- Form: the scoring routes take JSON. BentoML would also parse form and multipart bodies
  (and answers a multipart type without a boundary with a 500); refusing them keeps that
  parser, and its bugs, out of reach. No Content-Type at all is read as JSON.
"""

import asyncio
import math
import time

from credit_risk.middleware.auth import SCOPE_KEY_ID, header
from credit_risk.middleware.responses import refuse

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

    def __init__(self, app, rate_per_s: float, burst: int, clock=time.monotonic) -> None:
        self.app = app
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self.buckets: dict[str, TokenBucket] = {}  # one per key id: bounded by the keys file

    async def __call__(self, scope, receive, send):
        key_id = scope.get(SCOPE_KEY_ID)
        if (scope["type"] != "http" or key_id is None or self.rate <= 0
                or scope["path"] in NOT_LIMITED):
            return await self.app(scope, receive, send)
        bucket = self.buckets.get(key_id)
        if bucket is None:
            bucket = self.buckets[key_id] = TokenBucket(self.rate, self.burst, self.clock)
        if wait := bucket.take():
            return await refuse(
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
            media_type = (header(scope, b"content-type") or "application/json")
            if media_type.partition(";")[0].strip().lower() != "application/json":
                return await refuse(
                    scope, receive, send, 415, "unsupported_media_type",
                    "Send the request body as JSON, with Content-Type: application/json.")
        await self.app(scope, receive, send)


class LimitHeaderSize:
    """ASGI middleware: 431 when the request's header names and values pass `max_bytes`."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and sum(
                len(name) + len(value) for name, value in scope["headers"]) > self.max_bytes:
            return await refuse(
                scope, receive, send, 431, "headers_too_large",
                f"The request headers exceed {self.max_bytes} bytes.")
        await self.app(scope, receive, send)


class LimitBodySize:
    """ASGI middleware: 413 for a request body over `max_bytes`, announced or not; 408 for
    one not received within `timeout_s`. The body is read whole before the request goes on."""

    def __init__(self, app, max_bytes: int, timeout_s: float = 5) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self.too_large(scope, receive, send)
        # Read the body here, up to the limit, and hand it on whole: BentoML reads the whole
        # body anyway, and this catches chunked bodies and a Content-Length that lies.
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self.read_body(receive)
        except TimeoutError:
            return await refuse(
                scope, receive, send, 408, "body_timeout",
                f"The request body did not arrive within {self.timeout_s:g} s.",
                {"Connection": "close"})  # uvicorn then closes the connection
        if body is None:  # the client went away
            return None
        if len(body) > self.max_bytes:
            return await self.too_large(scope, receive, send)
        handed_on = False

        async def replay():
            nonlocal handed_on
            if handed_on:
                return await receive()  # after the body: wait for a disconnect, as usual
            handed_on = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def read_body(self, receive) -> bytes | None:
        """The body, or None if the client went away; stops reading past `max_bytes`."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes or not message.get("more_body", False):
                return b"".join(chunks)

    async def too_large(self, scope, receive, send):
        return await refuse(
            scope, receive, send, 413, "too_large",
            f"The request body exceeds {self.max_bytes} bytes.")
