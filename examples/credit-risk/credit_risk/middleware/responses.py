"""What every middleware layer answers with: a counted JSON refusal, and a watched `send`."""

from starlette.responses import JSONResponse

from credit_risk import telemetry


async def refuse(scope, receive, send, status: int, reason: str, message: str,
                 headers: dict | None = None) -> None:
    """Count a refused request by reason and answer it with a JSON error."""
    telemetry.REFUSED.labels(endpoint=telemetry.endpoint_label(scope["path"]), reason=reason).inc()
    await JSONResponse({"error": message}, status_code=status, headers=headers)(
        scope, receive, send)


class WatchedSend:
    """An ASGI `send` that passes every message on and remembers the response's status, and
    its body when the status is `keep_body_of`."""

    def __init__(self, send, keep_body_of: int) -> None:
        self.send, self.keep_body_of = send, keep_body_of
        self.status: int | None = None
        self.body = bytearray()

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and self.status == self.keep_body_of:
            self.body.extend(message.get("body", b""))
        await self.send(message)
