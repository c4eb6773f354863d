"""What the service tells its operators: Prometheus metrics, a prediction log, quiet rejections.

- Metrics use prometheus_client directly. `bentoml serve` starts its workers with
  PROMETHEUS_MULTIPROC_DIR set, so these add up across workers on /metrics.
- Every scored application becomes one JSON line (features, prediction, request id, UTC
  time) in a size-capped file per worker, for drift jobs and for joining delayed labels.
- A 400 from BentoML's validation is counted by field and reason, and logged as one line
  instead of a traceback that would copy the client's raw values into the server log.
- Requests refused before validation (no key, wrong scope, rate limit, body size) are
  counted by reason; audit.py writes who called, in the same JSON-lines format.
"""

import collections
import datetime
import json
import logging
import logging.handlers
import os
from pathlib import Path

import bentoml
from prometheus_client import Counter, Gauge, Histogram
from starlette.responses import JSONResponse

import data

PROBABILITY = Histogram(
    "credit_risk_probability_of_default", "Predicted probability of default per application",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
)
DECISIONS = Counter("credit_risk_decisions", "Scored applications by decision", ["decision"])
REJECTED = Counter(
    "credit_risk_rejected_inputs", "Validation errors in rejected (400) requests",
    ["endpoint", "field", "reason"],
)
# Info-style metrics: prometheus_client.Info does not work with several worker processes, so
# these are gauges; "max" merges the workers into one series instead of one per pid.
MODEL_INFO = Gauge("credit_risk_model_info", "The model being served; always 1",
                   ["model_version", "artifact_sha256"], multiprocess_mode="max")
BATCH_SIZE = Histogram(
    "credit_risk_batch_size", "Applications per model call made by the /score batcher",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
CACHE_LOOKUPS = Counter("credit_risk_cache_lookups", "Prediction cache lookups on /score",
                        ["result"])
# reason: unauthenticated, forbidden, rate_limited, unsupported_media_type or too_large
REFUSED = Counter("credit_risk_refused_requests",
                  "Requests refused before validation, by reason", ["endpoint", "reason"])
SHED = Counter("credit_risk_shed_requests", "Requests refused with 503 because of overload",
               ["endpoint"])
EXPECTED_DECLINE_RATE = Gauge(
    "credit_risk_expected_decline_rate", "Decline rate of the served model on held-out data",
    multiprocess_mode="max",
)

LOG_DIR = Path(os.environ.get("CREDIT_RISK_PREDICTION_LOG_DIR", "prediction-logs"))
LOG_FILE_BYTES, LOG_FILES_KEPT = 50 * 2**20, 5
SCORING_PATHS = ("/score", "/score_batch")


def endpoint_label(path: str) -> str:
    """A bounded label value: clients must not mint new series by inventing paths."""
    return path if path in SCORING_PATHS else "other"


def describe_model(stored_model) -> None:
    """Publish which model is served and what its decisions looked like at training time."""
    metadata = stored_model.info.metadata
    MODEL_INFO.labels(model_version=stored_model.tag.version,
                      artifact_sha256=metadata["artifact"]["sha256"]).set(1)
    EXPECTED_DECLINE_RATE.set(metadata["metrics"]["overall"]["decline_rate"])


async def refuse(scope, receive, send, status: int, reason: str, message: str,
                 headers: dict | None = None) -> None:
    """Count a refused request by reason and answer it with a JSON error."""
    REFUSED.labels(endpoint=endpoint_label(scope["path"]), reason=reason).inc()
    await JSONResponse({"error": message}, status_code=status, headers=headers)(
        scope, receive, send)


def record(applications: list, scores: list) -> None:
    """Count and log scored applications (pydantic models, in matching order)."""
    lines, decisions = [], collections.Counter()
    for application, score in zip(applications, scores, strict=True):
        PROBABILITY.observe(score.probability_of_default)
        decisions[score.decision] += 1
        lines.append({**application.model_dump(), **score.model_dump()})
    for decision, count in decisions.items():
        DECISIONS.labels(decision=decision).inc(count)
    jsonl_logger("predictions", LOG_DIR).info("", extra={"lines": lines})  # one write


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        time = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        stamp = time.isoformat(timespec="milliseconds")
        return "\n".join(json.dumps({"time": stamp, **line}) for line in record.lines)


def jsonl_logger(kind: str, folder: Path) -> logging.Logger:
    """One rotating JSON-lines file per worker, `<kind>.<worker>.jsonl` in `folder`: a file
    handler is not safe across processes."""
    worker = bentoml.server_context.worker_index or 0
    logger = logging.getLogger(f"credit_risk.{kind}.{worker}")
    if not logger.handlers:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            folder / f"{kind}.{worker}.jsonl", maxBytes=LOG_FILE_BYTES,
            backupCount=LOG_FILES_KEPT)
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # feature values stay out of the server log
    return logger


def read_log(folder: Path, kind: str) -> list[dict]:
    """Every line of a JSON-lines log in `folder`, oldest file first (rotated included)."""
    files = sorted(Path(folder).glob(f"{kind}.*.jsonl*"), key=lambda p: p.stat().st_mtime)
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def read_prediction_log(folder: Path = LOG_DIR) -> list[dict]:
    """Every logged prediction in `folder`, oldest file first (rotated files included)."""
    return read_log(folder, "predictions")


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


class RejectedInputMiddleware:
    """ASGI middleware: count each validation error in a 400 from a scoring endpoint.

    BentoML validates the request before the API method runs and answers with
    {"error": ..., "detail": [pydantic errors]}; this reads that body on its way out.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in SCORING_PATHS:
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
        REJECTED.labels(endpoint=endpoint, field=field_of(error.get("loc", [])),
                        reason=str(error.get("type", "unknown"))).inc()


def field_of(location: list) -> str:
    """The feature an error is about; unknown keys become "other" so clients cannot mint
    new label values (an extra_forbidden error carries whatever key was sent)."""
    for part in reversed(location):
        if isinstance(part, str):
            return part if part in data.FEATURES or part == "applications" else "other"
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


logging.getLogger("bentoml._internal.server.http_app").addFilter(QuietRejections())
