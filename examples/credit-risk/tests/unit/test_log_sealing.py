"""Encryption at rest of the prediction log: sealed lines, the log key, and what needs it."""

import json
import logging
import stat

import pytest

from credit_risk import telemetry
from credit_risk.jsonl_log import (
    LogKeyError,
    SharedLogFile,
    read_key,
    read_log,
    read_prediction_log,
    seal,
    unseal,
)
from credit_risk.schema import EXAMPLE_INPUT, Score
from ops import privacy

SCORE = Score(probability_of_default=0.42, decision="approve", model_version="v1",
              request_id="r1", reasons=[])


def close_prediction_log() -> None:
    logger = logging.getLogger("credit_risk.predictions.0")
    for handler in [h for h in logger.handlers if isinstance(h, SharedLogFile)]:
        handler.close()
        logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def fresh_logger():
    """The prediction logger keeps its first folder for the process (one per worker), which
    an earlier test in the session may have opened; each test here writes to its own."""
    close_prediction_log()
    yield
    close_prediction_log()


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "keys" / "log.key"
    privacy.keygen(path)
    return read_key(path)


def written(folder, key, request_ids=("r1",)):
    """The prediction log's text after the service's own write of one line per id."""
    scores = [SCORE.model_copy(update={"request_id": i}) for i in request_ids]
    telemetry.record([EXAMPLE_INPUT] * len(scores), scores, folder, key)
    return "".join(path.read_text() for path in folder.glob("predictions.*.jsonl*"))


def test_a_sealed_line_shows_only_its_time_and_request_id_and_reads_back_whole(tmp_path, key):
    text = written(tmp_path / "logs", key)
    (line,) = [json.loads(line) for line in text.splitlines()]
    assert set(line) == {"time", "request_id", "sealed"} and line["request_id"] == "r1"
    for value in ("48000", "26-35", "employed", "0.42", "approve"):
        assert value not in text
    (read,) = read_prediction_log(tmp_path / "logs", key)
    assert read["annual_income"] == EXAMPLE_INPUT.annual_income
    assert read["probability_of_default"] == 0.42 and read["time"] == line["time"]


def test_without_the_key_or_with_another_one_reading_stops_naming_the_line(tmp_path, key):
    folder = tmp_path / "logs"
    written(folder, key)
    (path,) = folder.glob("predictions.*.jsonl")
    with pytest.raises(LogKeyError, match=rf"^{path}:1 is sealed: reading it needs the log key"):
        read_prediction_log(folder)
    privacy.keygen(tmp_path / "other.key")
    with pytest.raises(LogKeyError, match="does not open with this log key"):
        read_prediction_log(folder, read_key(tmp_path / "other.key"))


def test_a_line_moved_to_another_request_id_does_not_open(tmp_path, key):
    line = seal({"request_id": "r1", "annual_income": 48_000}, key)
    with pytest.raises(LogKeyError, match="or the line was changed"):
        unseal({**line, "request_id": "r2"}, key, "here")


def test_erase_and_purge_work_on_a_sealed_log_without_the_key(tmp_path, key):
    folder = tmp_path / "logs"
    written(folder, key, ("r1", "r2", "r3"))
    privacy.erase(folder, ["r2"])
    assert [line["request_id"] for line in read_prediction_log(folder, key)] == ["r1", "r3"]
    privacy.purge(folder, 0)
    assert read_log(folder, "predictions", key) == []


def test_keygen_writes_an_owner_only_key_and_never_replaces_one(tmp_path, key):
    path = tmp_path / "keys" / "log.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert privacy.main(["keygen", str(path)]) == 1
    assert read_key(path) == key  # unchanged


@pytest.mark.parametrize(("content", "message"), [
    ("not base64!", "cannot be read as a base64 key"),
    ("c2hvcnQ=", "holds 5 bytes; a log key has 32"),
])
def test_a_bad_key_file_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "log.key"
    path.write_text(content)
    with pytest.raises(LogKeyError, match=message) as error:
        read_key(path)
    assert "\n" not in str(error.value)
