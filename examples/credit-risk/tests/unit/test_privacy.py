"""Personal data in the logs: private files, erasure (while a writer holds the file open),
the erasure register on every read, retention."""

import datetime
import json
import logging
import os
import stat
import threading

import pandas as pd
import pytest

from credit_risk import api_keys
from credit_risk.jsonl_log import (
    ERASURE_REGISTER,
    LOCK_FILE,
    JsonLines,
    SharedLogFile,
    digest,
    jsonl_logger,
    read_log,
    read_prediction_log,
)
from ops import privacy

NOW = datetime.datetime.now(datetime.UTC)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stamp(days_ago: float = 0) -> str:
    return (NOW - datetime.timedelta(days_ago)).isoformat(timespec="milliseconds")


def write_lines(path, lines: list[dict]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    path.chmod(0o600)


def prediction(request_id: str, days_ago: float = 0) -> dict:
    return {"time": stamp(days_ago), "annual_income": 52_000.0, "decision": "approve",
            "request_id": request_id}


def audit(*ids: str, days_ago: float = 0) -> dict:
    return {"time": stamp(days_ago), "key_id": "partner-a", "endpoint": "/score_batch",
            "status": 200, "request_ids": list(ids)}


@pytest.fixture
def logs(tmp_path):
    """A log folder as a worker leaves it: a current and a rotated file of each log."""
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o700)
    write_lines(folder / "predictions.0.jsonl.1", [prediction("a"), prediction("b")])
    write_lines(folder / "predictions.0.jsonl", [prediction("c"), prediction("a")])
    write_lines(folder / "audit.0.jsonl.1", [audit("a", "b")])
    write_lines(folder / "audit.0.jsonl", [audit("c"), audit("a")])
    old = NOW.timestamp() - 3600
    for name in ("predictions.0.jsonl.1", "audit.0.jsonl.1"):
        os.utime(folder / name, (old, old))  # rotated: older than the current file
    return folder


@pytest.fixture
def writer(logs):
    """A worker's prediction logger on `logs`, with the service's handler, its file open."""
    handler = SharedLogFile(logs / "predictions.0.jsonl")
    handler.setFormatter(JsonLines())
    logger = logging.getLogger(f"test_privacy.{id(handler)}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger
    logger.removeHandler(handler)
    handler.close()


def log(logger, *ids: str) -> None:
    logger.info("", extra={"lines": [{"request_id": request_id} for request_id in ids]})


def texts(folder) -> dict[str, str]:
    return {path.name: path.read_text() for path in folder.iterdir()}


def test_a_real_write_leaves_files_only_their_owner_can_read(tmp_path):
    folder = tmp_path / "state" / "logs"
    logger = jsonl_logger("privacy-probe", folder)
    try:
        log(logger, "x")
    finally:
        logger.handlers[0].close()
        logger.removeHandler(logger.handlers[0])
    assert mode(folder) == 0o700
    assert mode(folder / "privacy-probe.0.jsonl") == 0o600
    assert mode(folder / LOCK_FILE) == 0o600
    api_keys.new(tmp_path / "state" / "api-keys.jsonl", "partner-a", ["score"])
    assert mode(tmp_path / "state" / "api-keys.jsonl") == 0o600


def test_erase_removes_a_persons_lines_from_every_file_and_keeps_every_other(logs, tmp_path):
    labels = tmp_path / "labels.jsonl"
    write_lines(labels, [{"request_id": "a", "default": 1}, {"request_id": "b", "default": 0}])
    before = texts(logs)
    mtimes = {path.name: path.stat().st_mtime_ns for path in logs.iterdir()}

    [entry] = privacy.erase(logs, ["a"], labels)

    after = texts(logs)
    for name, text in [*after.items(), ("labels", labels.read_text())]:
        assert '"a"' not in text, name
    # every other line is still there, the untouched ones byte for byte
    assert after["predictions.0.jsonl.1"] == before["predictions.0.jsonl.1"].splitlines(True)[1]
    assert after["predictions.0.jsonl"] == before["predictions.0.jsonl"].splitlines(True)[0]
    assert [line["request_ids"] for line in read_log(logs, "audit")] == [["b"], ["c"]]
    assert [json.loads(line)["request_id"] for line in labels.read_text().splitlines()] == ["b"]
    assert entry == {"request_id_sha256": digest("a"), "time": entry["time"], "lines": 5,
                     "files": {"predictions.0.jsonl.1": 1, "predictions.0.jsonl": 1,
                               "audit.0.jsonl.1": 1, "audit.0.jsonl": 1, str(labels): 1}}
    for name in ("predictions.0.jsonl.1", "predictions.0.jsonl", "audit.0.jsonl",
                 ERASURE_REGISTER):
        assert mode(logs / name) == 0o600, name
    assert {name: logs.joinpath(name).stat().st_mtime_ns for name in mtimes} == mtimes
    assert sorted(os.listdir(logs)) == sorted([*before, ERASURE_REGISTER, LOCK_FILE])


def test_readers_skip_an_erased_id_in_a_line_written_after_the_erasure(logs):
    privacy.erase(logs, ["a"])
    # a worker answering a's request as the erasure ran writes its audit line afterwards
    with open(logs / "audit.0.jsonl", "a") as late:
        late.write(json.dumps(audit("a", "d")) + "\n")
    write_lines(logs / "predictions.1.jsonl", [prediction("a")])  # say, restored from a backup
    assert [line["request_id"] for line in read_prediction_log(logs)] == ["b", "c"]
    assert read_log(logs, "audit")[-1]["request_ids"] == ["d"]
    outcomes = pd.DataFrame({"request_id": ["a", "b", "c"], "default": [1, 0, 0]})
    assert list(privacy.without_erased(outcomes, logs)["request_id"]) == ["b", "c"]
    privacy.purge(logs, older_than_days=365)  # the next run of the retention job
    assert all('"a"' not in text for name, text in texts(logs).items()
               if name != ERASURE_REGISTER)


def test_a_writer_holding_the_file_open_follows_the_rewrite(logs, writer):
    log(writer, "x")
    privacy.erase(logs, ["a"])
    log(writer, "y")  # the handler's descriptor still points at the replaced file
    assert [line["request_id"] for line in read_prediction_log(logs)] == ["b", "c", "x", "y"]


def test_no_line_is_lost_while_erasures_rewrite_the_file_being_written(logs, writer):
    written, stop = [], threading.Event()

    def write_until_stopped() -> None:
        while not stop.is_set():
            request_id = f"w{len(written)}"
            log(writer, request_id, f"v{request_id}")  # v...: a line the next erasure removes
            written.append(request_id)

    thread = threading.Thread(target=write_until_stopped)
    thread.start()
    rewrites = 0
    try:
        while rewrites < 10:
            victims = [line["request_id"] for line in read_prediction_log(logs)
                       if line["request_id"].startswith("v")]
            entries = privacy.erase(logs, victims[-3:] or ["none"])
            rewrites += any(entry["lines"] > 0 for entry in entries)
    finally:
        stop.set()
        thread.join()
    logged = [line["request_id"] for line in read_prediction_log(logs)]
    assert [request_id for request_id in logged if request_id.startswith("w")] == written


def test_a_line_still_being_written_is_not_read(tmp_path):
    # Readers take no lock: a writer may be half-way through the last line.
    write_lines(tmp_path / "predictions.0.jsonl", [prediction("a")])
    with open(tmp_path / "predictions.0.jsonl", "a") as file:
        file.write(json.dumps(prediction("b"))[:20])
    assert [line["request_id"] for line in read_prediction_log(tmp_path)] == ["a"]


def test_purge_removes_the_lines_older_than_the_retention_only(logs):
    write_lines(logs / "predictions.0.jsonl.2", [prediction("old", days_ago=400)])
    write_lines(logs / "audit.0.jsonl.2", [audit("old", days_ago=400), audit("d", days_ago=2)])
    changed = privacy.purge(logs, older_than_days=30)
    assert changed == {"predictions.0.jsonl.2": 1, "audit.0.jsonl.2": 1}
    assert [line["request_id"] for line in read_prediction_log(logs)] == ["a", "b", "c", "a"]
    assert [line["request_ids"] for line in read_log(logs, "audit")
            if line["request_ids"] in (["old"], ["d"])] == [["d"]]


def test_the_command_line_erases_purges_and_refuses_bad_input_in_one_line(logs, capsys):
    assert privacy.main(["--log-dir", str(logs), "erase", "--request-id", "a",
                         "--request-id", "nobody"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert sorted(printed) == sorted([
        f"erased request {digest('a')[:12]}: 4 lines from predictions.0.jsonl.1 (1), "
        "predictions.0.jsonl (1), audit.0.jsonl.1 (1), audit.0.jsonl (1)",
        f"erased request {digest('nobody')[:12]}: 0 lines from no file"])
    assert privacy.main(["--log-dir", str(logs), "purge", "--older-than-days", "-1"]) == 1
    assert capsys.readouterr().err == "error: --older-than-days must not be negative\n"
    (logs / "audit.0.jsonl").write_text("not json\n")
    assert privacy.main(["--log-dir", str(logs), "purge", "--older-than-days", "30"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_erase_gives_up_with_a_message_while_the_folder_stays_locked(logs):
    import fcntl

    with open(logs / LOCK_FILE, "a") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # a write that never ends
        with pytest.raises(TimeoutError, match="stayed locked"):
            with privacy.exclusive(logs, deadline_s=0.2):
                pass
