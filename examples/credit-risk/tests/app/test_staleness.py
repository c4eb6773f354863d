"""Model 4 of the ML Test Score: the impact of model staleness is known.

`python -m ops.staleness` measures the stored model's ROC AUC on fresh applications as concept
drift grows (the synthetic stand-in for age) into results/staleness.json, and where it
crosses the release gate's floor: the retraining trigger the model card states. These tests
recompute that curve with the model the tests train and fail when the committed file no longer
describes it, so a new model cannot ship with an old staleness curve."""

import json

import pytest

from credit_risk import scoring
from ops import staleness
from ops.release.gate import GatePolicy


@pytest.mark.app
def test_the_committed_curve_is_this_models(trained):
    committed = json.loads(staleness.RESULTS.read_text())
    measured = staleness.measure(scoring.load(str(trained[0].tag)))
    assert committed == measured, (
        "results/staleness.json does not describe the current model; "
        "regenerate it with: python -m ops.staleness")


@pytest.mark.app
def test_the_model_goes_stale_before_the_strongest_drift():
    """The measured curve starts above the gate's floor and crosses it: the trigger exists."""
    committed = json.loads(staleness.RESULTS.read_text())
    assert committed["floor"] == GatePolicy().min_roc_auc
    assert committed["points"][0]["roc_auc"] >= committed["floor"]
    assert 0 < committed["retrain_at_concept_drift"] < 1


@pytest.mark.unit
@pytest.mark.parametrize(("aucs", "expected"), [
    ((0.76, 0.72, 0.68), 0.75),      # 0.72 -> 0.68 crosses 0.70 halfway: 0.5 + 0.25 * 0.5
    ((0.76, 0.74, 0.71), None),      # never below the floor
    ((0.69, 0.65, 0.60), 0.0),       # below it from the start
    ((0.76, 0.70, 0.69), 0.5),       # exactly at the floor is not below it
])
def test_crossing_interpolates_between_measured_strengths(aucs, expected):
    points = [{"concept_drift": s, "roc_auc": a} for s, a in zip((0.0, 0.5, 1.0), aucs,
                                                                 strict=True)]
    assert staleness.crossing(points, 0.70) == (expected and pytest.approx(expected))
