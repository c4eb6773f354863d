"""The example's commands, each run as a reader runs it: a process of its own."""

import json
import os
import subprocess
import sys

import pytest
from checks import forge

from credit_risk import artifact, schema
from ops import signing
from ops.processes import EXAMPLE_DIR
from training import data


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(private key, public key) made by `signing.keygen`."""
    return signing.keygen(tmp_path_factory.mktemp("keys"))


def test_command_line_writes_metrics(tmp_path):
    metrics_file = tmp_path / "metrics.json"
    result = subprocess.run(
        [sys.executable, "train.py", "--rows", "4000", "--metrics", str(metrics_file)],
        capture_output=True, text=True, timeout=120, cwd=EXAMPLE_DIR,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(metrics_file.read_text())["overall"]["rows"] == 1000
    assert "credit_risk:" in result.stdout


@pytest.mark.timeout(240)
def test_training_signs_and_the_command_verifies(keys, tmp_path):
    """`python train.py` with CREDIT_RISK_SIGNING_KEY signs; `ops.signing verify` checks."""
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"),
           "CREDIT_RISK_SIGNING_KEY": str(keys[0])}

    def run(*command):
        return subprocess.run([sys.executable, *command], cwd=EXAMPLE_DIR, env=env,
                              capture_output=True, text=True, timeout=180)

    trained = run("train.py", "--rows", "4000", "--metrics", str(tmp_path / "metrics.json"))
    assert trained.returncode == 0, trained.stderr
    verify = ["-m", "ops.signing", "verify", "credit_risk:latest", "--public-key", str(keys[1])]
    checked = run(*verify)
    assert checked.returncode == 0, checked.stderr
    assert " ok in " in checked.stdout
    print(checked.stdout)

    [folder] = (tmp_path / "bentoml" / "models" / "credit_risk").glob("*/")
    files = {p.name for p in folder.iterdir()}
    assert {artifact.MANIFEST, artifact.SIGNATURE, artifact.ARTIFACT, "model.yaml"} <= files
    assert files - {artifact.SIGNATURE} == set(json.loads(
        (folder / artifact.MANIFEST).read_text())) | {artifact.MANIFEST}
    forge(folder, threshold=0.99)
    refused = run(*verify)
    assert refused.returncode != 0
    assert "changed since signing: manifest.json, model.yaml" in refused.stderr


def test_command_line_writes_report_and_summary(client_scored, tmp_path, trained):
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "ops.drift", "--model", str(trained[0].tag), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=EXAMPLE_DIR,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "drift.json").read_text())
    assert summary["rows"] >= client_scored and set(summary["features"]) == set(schema.FEATURES)
    assert (out / "drift.html").stat().st_size > 10_000


def test_command_line_says_when_there_is_nothing_to_compare(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ops.drift", "--log-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, cwd=EXAMPLE_DIR)
    assert result.returncode == 2
    assert f"no predictions logged in {tmp_path}" in result.stderr


@pytest.fixture
def client_scored(client):
    """Score 50 applications in process, so the prediction log has something to compare."""
    rows = data.generate(50, seed=5)[schema.FEATURES].to_dict("records")
    assert client.post("/score_batch", json={"applications": rows}).status_code == 200
    return 50
