"""The audit log: one JSON line per scoring request, whoever sent it and however it ended.

Each line says who (the key id, never the key; null when no valid key was sent), when (UTC),
which endpoint and model version, the outcome (the HTTP status) and the request ids the
answer carried, which join it to the prediction log. It holds no feature values: the audit
trail is kept longer and read by more people than the prediction log, so it must not become
a second copy of applicants' data. Files rotate like the prediction log, in the same folder
(the `log_dir` setting).
"""

import asyncio
import json
from pathlib import Path

from credit_risk import telemetry
from credit_risk.jsonl_log import jsonl_logger, read_log
from credit_risk.middleware.auth import SCOPE_KEY_ID
from credit_risk.middleware.responses import WatchedSend


def read_audit_log(folder: Path) -> list[dict]:
    return read_log(folder, "audit")


def request_ids(body: bytes) -> list[str]:
    """The request ids in a 200 answer of /score or /score_batch (none if cut short)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return []
    if "scores" in answer:
        return [score["request_id"] for score in answer["scores"]]
    return [answer["request_id"]]


class AuditLog:
    """ASGI middleware, outside every check, so refusals are recorded too."""

    def __init__(self, app, model_version: str, log_dir: Path) -> None:
        self.app = app
        self.model_version = model_version
        self.log_dir = log_dir

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in telemetry.SCORING_PATHS:
            return await self.app(scope, receive, send)
        watched = WatchedSend(send, keep_body_of=200)
        try:
            await self.app(scope, receive, watched)
        except asyncio.CancelledError:
            # BentoML's timeout (outside this middleware) cancels the request and answers 504.
            watched.status = watched.status or 504
            raise
        finally:
            status = watched.status or 500
            line = {"key_id": scope.get(SCOPE_KEY_ID), "endpoint": scope["path"],
                    "model_version": self.model_version, "status": status,
                    "request_ids": request_ids(bytes(watched.body)) if status == 200 else []}
            jsonl_logger("audit", self.log_dir).info("", extra={"lines": [line]})
