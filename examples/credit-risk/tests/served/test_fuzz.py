"""Fuzzing: schemathesis against a real `bentoml serve`, every check on, no failure allowed.

Schemathesis reads /docs.json, then sends valid and invalid requests to every operation
(examples, boundary values, wrong types and media types, unsupported methods, requests
without the API key) and checks each answer against the document: no 5xx, only declared
status codes, headers and bodies, invalid data refused, valid data accepted, the API key
enforced. The server gets the tests' generous rate limit: this run checks the contract, and
test_security.py checks the limiter.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import AUTH, served

MAX_EXAMPLES = 50  # per operation and phase; a run takes about a minute on two cores
SEED = 20260101


@pytest.mark.timeout(600)
def test_schemathesis_with_all_checks_finds_no_failure(trained, tmp_path):
    report = tmp_path / "schemathesis.json"
    schemathesis = Path(sys.executable).with_name("schemathesis")
    with served(log=tmp_path / "serve.log") as url:
        run = subprocess.run(
            [schemathesis, "run", f"{url}/docs.json", "--url", url, "--checks", "all",
             "--header", f"X-API-Key: {AUTH['X-API-Key']}", "--seed", str(SEED),
             "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--request-timeout", "15",
             "--report", "json", "--report-json-path", str(report)],
            cwd=tmp_path, capture_output=True, text=True, timeout=540,
            env={**os.environ, "NO_COLOR": "1"},
        )
    output = run.stdout + run.stderr
    assert report.exists(), output[-6000:]
    result = json.loads(report.read_text())
    cases = result["test_cases"]
    print(f"\nschemathesis: {cases['generated']} test cases on {result['operations']['tested']}"
          f" operations in {result['running_time']:.0f} s, {cases['with_failures']} failing, "
          f"{len(result['errors'])} errors")
    assert run.returncode == 0, output[-6000:]
    assert cases["with_failures"] == 0 and not result["errors"]
    assert result["operations"]["tested"] == result["operations"]["total"] == 6
    assert AUTH["X-API-Key"].split("_", 2)[2] not in (tmp_path / "serve.log").read_text()
