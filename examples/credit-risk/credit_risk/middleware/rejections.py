"""Rejected inputs: each validation error of a 400 counted by field and reason, and logged
as one line instead of a traceback that would copy the client's raw values into the log."""

import json
import logging

from credit_risk import telemetry
from credit_risk.middleware.responses import WatchedSend
from credit_risk.schema import FEATURES


class RejectedInputMiddleware:
    """ASGI middleware: count each validation error in a 400 from a scoring endpoint.

    BentoML validates the request before the API method runs and answers with
    {"error": ..., "detail": [pydantic errors]}; this reads that body on its way out.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in telemetry.SCORING_PATHS:
            return await self.app(scope, receive, send)
        watched = WatchedSend(send, keep_body_of=400)
        await self.app(scope, receive, watched)
        if watched.status == 400:
            count_rejection(scope["path"], bytes(watched.body))


def count_rejection(endpoint: str, body: bytes) -> None:
    try:
        errors = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        errors = [{"loc": [], "type": "unparseable"}]
    for error in errors:
        telemetry.REJECTED.labels(endpoint=endpoint, field=field_of(error.get("loc", [])),
                        reason=str(error.get("type", "unknown"))).inc()


def field_of(location: list) -> str:
    """The feature an error is about; unknown keys become "other" so clients cannot mint
    new label values (an extra_forbidden error carries whatever key was sent)."""
    for part in reversed(location):
        if isinstance(part, str):
            return part if part in FEATURES or part == "applications" else "other"
    return "body"


class QuietRejections(logging.Filter):
    """Turn BentoML's ERROR-with-traceback for a rejected request into one WARNING line.

    The traceback ends in pydantic's input_value=..., the client's raw data; real errors
    (anything but a ValidationError) keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if type(error).__name__ == "ValidationError":
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.msg}: rejected, {error.error_count()} validation error(s)"
        return True
