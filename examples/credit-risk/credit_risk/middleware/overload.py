"""Refuse work beyond a fixed number of requests in flight, at once and with a 503.

BentoML's own `traffic.max_concurrency` does the same counting but answers 429, which tells
a client that *it* sent too much. Overload is the server's state, so this answers 503 with
`Retry-After`: a load balancer (nginx's `proxy_next_upstream http_503`) then tries another
replica, and a client backs off. Health and metrics paths are never refused, so probes and
scrapes still see an overloaded replica.

A request counts once its whole body has arrived: limits.LimitBodySize, outside this layer,
reads it first (with a deadline), so slow or stalled uploads cannot fill the slots.
"""

from starlette.responses import JSONResponse

from credit_risk import telemetry

NEVER_REFUSED = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


class ShedOverload:
    """ASGI middleware: at most `max_in_flight` requests inside the service per worker."""

    def __init__(self, app, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in NEVER_REFUSED:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_in_flight:
            telemetry.SHED.labels(endpoint=telemetry.endpoint_label(scope["path"])).inc()
            refusal = JSONResponse({"error": "The service is overloaded; retry shortly."},
                                   status_code=503, headers={"Retry-After": "1"})
            return await refusal(scope, receive, send)
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
