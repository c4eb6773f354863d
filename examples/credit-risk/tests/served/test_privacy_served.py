"""Erasure against a real `bentoml serve`: run while the worker holds its log files open."""

import json
import subprocess
import sys

import httpx
import pytest
from checks import applications, poll
from servers import AUTH, failed_start, served

from credit_risk.jsonl_log import read_key, read_prediction_log
from credit_risk.middleware.audit import read_audit_log
from ops import privacy
from ops.processes import EXAMPLE_DIR


def score(url: str, bodies: list[dict]) -> list[str]:
    """Score `bodies` one per request; their request ids."""
    ids = []
    for body in bodies:
        response = httpx.post(f"{url}/score", json=body, timeout=10, headers=AUTH)
        assert response.status_code == 200, response.text
        ids.append(response.json()["request_id"])
    return ids


def audited(folder, ids: list[str]) -> None:
    """Wait for the audit lines of `ids` (written once the answer has gone)."""
    poll(lambda: {i for line in read_audit_log(folder) for i in line["request_ids"]},
         until=lambda seen: set(ids) <= seen)


@pytest.mark.timeout(240)
def test_erase_while_serving_removes_one_person_from_both_logs(trained, tmp_path):
    folder = tmp_path / "logs"
    bodies = [application.model_dump() for application in applications(4)]
    with served(log=tmp_path / "serve.log", CREDIT_RISK_LOG_DIR=str(folder)) as url:
        ids = score(url, bodies[:3])
        audited(folder, ids)
        erased, kept = ids[0], ids[1:]
        result = subprocess.run(
            [sys.executable, "-m", "ops.privacy", "--log-dir", str(folder), "erase",
             "--request-id", erased], cwd=EXAMPLE_DIR, capture_output=True, text=True,
            timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("erased request ") and ": 2 lines from " in result.stdout
        later = score(url, bodies[3:])  # the worker writes on after its file was replaced
        audited(folder, later)
    for kind in ("predictions", "audit"):
        text = "".join(path.read_text() for path in folder.glob(f"{kind}.*.jsonl*"))
        assert erased not in text, kind
        for request_id in [*kept, *later]:
            assert request_id in text, (kind, request_id)


@pytest.mark.timeout(240)
def test_a_sealed_prediction_log_holds_no_applicant_value_in_the_clear(trained, tmp_path):
    folder, key_file = tmp_path / "logs", tmp_path / "keys" / "log.key"
    privacy.keygen(key_file)
    bodies = [application.model_dump() for application in applications(3)]
    with served(log=tmp_path / "serve.log", CREDIT_RISK_LOG_DIR=str(folder),
                CREDIT_RISK_LOG_KEY_FILE=str(key_file)) as url:
        ids = score(url, bodies)
        audited(folder, ids)
    raw = [json.loads(line) for path in folder.glob("predictions.*.jsonl*")
           for line in path.read_text().splitlines()]
    assert [line["request_id"] for line in raw] == ids
    assert all(set(line) == {"time", "request_id", "sealed"} for line in raw)
    opened = read_prediction_log(folder, read_key(key_file))
    assert [{name: line[name] for name in bodies[0]} for line in opened] == bodies


def test_an_unreadable_log_key_stops_the_service_in_one_line(trained, tmp_path):
    key_file = tmp_path / "log.key"
    key_file.write_text("c2hvcnQ=\n")  # five bytes, not 32
    code, output = failed_start(tmp_path / "serve.log", CREDIT_RISK_LOG_KEY_FILE=str(key_file))
    assert code != 0
    (line,) = [line for line in output.splitlines() if "not started" in line]
    assert line == (f"credit-risk service not started: log key file {key_file} holds 5 bytes; "
                    "a log key has 32"), line
