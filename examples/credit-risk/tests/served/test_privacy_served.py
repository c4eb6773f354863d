"""Erasure against a real `bentoml serve`: run while the worker holds its log files open."""

import subprocess
import sys

import httpx
import pytest
from checks import applications, poll
from servers import AUTH, served

from credit_risk.middleware.audit import read_audit_log
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
