"""Rotating JSON-lines logs, one file per worker: the prediction log and the audit log."""

import datetime
import json
import logging
import logging.handlers
from pathlib import Path

import bentoml

FILE_BYTES, FILES_KEPT = 50 * 2**20, 5


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
            folder / f"{kind}.{worker}.jsonl", maxBytes=FILE_BYTES,
            backupCount=FILES_KEPT)
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # feature values stay out of the server log
    return logger


def read_log(folder: Path, kind: str) -> list[dict]:
    """Every line of a JSON-lines log in `folder`, oldest file first (rotated included)."""
    files = sorted(Path(folder).glob(f"{kind}.*.jsonl*"), key=lambda p: p.stat().st_mtime)
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def read_prediction_log(folder: Path) -> list[dict]:
    """Every logged prediction in `folder`, oldest file first (rotated files included)."""
    return read_log(folder, "predictions")
