"""Data 3 of the ML Test Score: no feature's cost is too much. Each feature's cost (CPU time
of one `/score` request, bytes of the stored model) is weighed against the ROC AUC it earns
under the budget in training/feature_cost.py.

The costs are measured by `python -m training.feature_cost` (run by `make bench`: a timing
is a benchmark, never a timed test) into training/feature_cost.json; these tests judge that
file, and fail when it no longer describes the model (new features, new parameters)."""

import json

from credit_risk.schema import FEATURES
from training import feature_cost
from training.feature_cost import over_budget
from training.model import DEFAULT_PARAMS


def test_the_budget_weighs_cost_against_benefit():
    """The judgement on planted numbers: a full model of 5 ms and 250 kB earning 0.25 AUC."""
    cost = {"full": {"roc_auc": 0.75, "latency_ms": 5.0, "bytes": 250_000}, "features": {
        "useful_and_slow": {"latency_ms": 4.0, "bytes": 3_000},   # budget 2.5 + 2*0.2*5 = 4.5
        "useful_and_too_slow": {"latency_ms": 5.0, "bytes": 3_000},
        "useless_and_cheap": {"latency_ms": 2.0, "bytes": 3_000},  # Data 2's concern, not cost
        "useless_and_big": {"latency_ms": 0.3, "bytes": 60_000},
    }}
    benefit = {"useful_and_slow": (0.05, 0.0), "useful_and_too_slow": (0.05, 0.0),
               "useless_and_cheap": (0.0, 0.0), "useless_and_big": (0.0, 0.0)}
    assert set(over_budget(benefit, cost)) == {"useful_and_too_slow", "useless_and_big"}


def test_the_committed_results_cover_the_models_features_within_budget():
    """training/feature_cost.json (`python -m training.feature_cost`) is what the docs show."""
    committed = json.loads(feature_cost.RESULTS.read_text())
    stale = "stale: run python -m training.feature_cost (make bench)"
    assert list(committed["features"]) == FEATURES, stale
    assert committed["params"] == DEFAULT_PARAMS, stale
    assert committed["noise_ms"] < feature_cost.LATENCY_FLOOR_MS / 2, "too noisy to judge"
    assert committed["over_budget"] == {}, json.dumps(committed["over_budget"], indent=1)
