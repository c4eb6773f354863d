"""Test-only: the credit-risk service with a fault that shows only under sustained traffic.

The pipeline tests build a candidate bento with this module as its entry point (see
`faults.faulty_source`), so service.py carries no test hook. It wraps the same service with one
more ASGI middleware: the first few /score requests succeed, so the smoke test passes, and
then every second one fails with a 500, the way a leak or a race shows up only under load.
That is the kind of release a canary exists to catch.
"""

from starlette.responses import JSONResponse

from service import CreditRisk

HEALTHY_REQUESTS = 5


class FailUnderLoad:
    def __init__(self, app) -> None:
        self.app = app
        self.scored = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/score":
            self.scored += 1
            if self.scored > HEALTHY_REQUESTS and self.scored % 2 == 0:
                failure = JSONResponse({"error": "injected fault"}, status_code=500)
                return await failure(scope, receive, send)
        return await self.app(scope, receive, send)


CreditRisk.add_asgi_middleware(FailUnderLoad)
