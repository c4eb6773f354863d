"""The monitoring job: drift found when injected, quiet when not; concept drift in the AUC."""


import json

import pandas as pd
import pytest

from credit_risk import schema, scoring
from ops import drift
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


def test_the_job_compares_only_the_last_window_of_the_log(trained, tmp_path, monkeypatch):
    old = data.generate(500, seed=3, covariate_drift=0.5).assign(time="2026-01-01T10:00:00+00:00")
    new = data.generate(500, seed=4).assign(time="2026-01-01T11:30:00+00:00")
    log = pd.concat([old, new])[[*schema.FEATURES, "time"]]
    log.to_json(tmp_path / "predictions.0.jsonl", orient="records", lines=True)
    monkeypatch.setattr("sys.argv", ["drift", "--log-dir", str(tmp_path), "--window", "1h",
                                     "--model", str(trained[0].tag), "--out", str(tmp_path)])
    drift.main()
    summary = json.loads((tmp_path / "drift.json").read_text())
    assert summary["rows"] == 500 and summary["dataset_drift"] is False
