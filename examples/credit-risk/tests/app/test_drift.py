"""The monitoring job: drift found when injected, quiet when not; concept drift in the AUC."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from credit_risk import schema, scoring
from ops import drift
from ops.processes import EXAMPLE_DIR
from training import data


@pytest.fixture(scope="module")
def reference(trained):
    return drift.training_reference(str(trained[0].tag))


def test_a_sample_without_drift_is_not_flagged(reference):
    summary = drift.feature_drift(reference, data.generate(2_000, seed=2))
    assert summary["dataset_drift"] is False
    assert not [f for f, result in summary["features"].items() if result["drifted"]]


def test_injected_covariate_drift_is_flagged(reference):
    summary = drift.feature_drift(reference, data.generate(2_000, seed=1, covariate_drift=0.5))
    assert summary["dataset_drift"] is True
    assert summary["features"]["annual_income"]["drifted"]
    assert summary["drifted_share"] > 0.5


def logged_day(service, concept_drift_after_noon: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A prediction log and delayed labels for a day, concept drift from noon."""
    morning = data.generate(3_000, seed=21)
    afternoon = data.generate(3_000, seed=22, concept_drift=concept_drift_after_noon)
    day = pd.concat([morning, afternoon], ignore_index=True)
    rows = day[schema.FEATURES].to_dict("records")
    applications = [schema.LoanApplication(**row) for row in rows]
    scores = scoring.score(service.MODEL, applications)
    predictions = pd.DataFrame([s.model_dump() for s in scores])
    predictions["time"] = pd.date_range("2026-01-01", periods=len(day), freq="14s", tz="UTC")
    labels = pd.DataFrame({"request_id": predictions.request_id, schema.TARGET: day[schema.TARGET]})
    return predictions, labels


def test_concept_drift_shows_up_as_a_performance_drop_once_labels_arrive(service):
    predictions, labels = logged_day(service, concept_drift_after_noon=1.0)
    windows = drift.performance_by_window(predictions, labels, window="12h")
    morning, afternoon = windows.roc_auc
    assert morning >= 0.74
    assert afternoon < morning - 0.1
    # The inputs did not move, so the drift report alone would not have caught it:
    same_inputs = data.generate(3_000, seed=22, concept_drift=1.0)
    assert not drift.feature_drift(data.generate(5_000, seed=0), same_inputs)["dataset_drift"]


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
