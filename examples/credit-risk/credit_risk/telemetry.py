"""What the service tells its operators through Prometheus, and the prediction log.

- Metrics use prometheus_client directly. `bentoml serve` starts its workers with
  PROMETHEUS_MULTIPROC_DIR set, so these add up across workers on /metrics.
- Every scored application becomes one JSON line (features, prediction, the codes of a
  decline's reasons, request id, UTC time) in a size-capped file per worker (see jsonl_log),
  for drift jobs and for joining delayed labels; sealed given a log key (see jsonl_log).
"""

import collections
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from credit_risk.jsonl_log import jsonl_logger, seal

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
                   ["model_version", "artifact_sha256", "runtime"], multiprocess_mode="max")
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
TRAINED_AT = Gauge(
    "credit_risk_model_trained_timestamp_seconds",
    "When the served model was trained (Unix time): its age is time() minus this",
    ["model_version"], multiprocess_mode="max",
)
EXPECTED_DECLINE_RATE = Gauge(
    "credit_risk_expected_decline_rate", "Decline rate of the served model on held-out data",
    multiprocess_mode="max",
)

SCORING_PATHS = ("/score", "/score_batch")


def endpoint_label(path: str) -> str:
    """A bounded label value: clients must not mint new series by inventing paths."""
    return path if path in SCORING_PATHS else "other"


def describe_model(model) -> None:
    """Publish which model is served, when it was trained, and what its decisions looked like
    at training time."""
    MODEL_INFO.labels(model_version=model.version, artifact_sha256=model.sha256,
                      runtime=model.runtime).set(1)
    TRAINED_AT.labels(model_version=model.version).set(model.trained_at.timestamp())
    EXPECTED_DECLINE_RATE.set(model.metadata["metrics"]["overall"]["decline_rate"])


def record(applications: list, scores: list, log_dir: Path, key: bytes | None = None) -> None:
    """Count scored applications and log them to `log_dir` (pydantic models, in order),
    each line sealed with `key` when one is given."""
    lines, decisions = [], collections.Counter()
    for application, score in zip(applications, scores, strict=True):
        PROBABILITY.observe(score.probability_of_default)
        decisions[score.decision] += 1
        lines.append({**application.model_dump(), **score.model_dump(exclude={"reasons"}),
                      "reasons": [reason.code for reason in score.reasons]})
    for decision, count in decisions.items():
        DECISIONS.labels(decision=decision).inc(count)
    if key is not None:
        lines = [seal(line, key) for line in lines]
    jsonl_logger("predictions", log_dir).info("", extra={"lines": lines})  # one write
