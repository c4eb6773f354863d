"""Tests written for items of the ML Test Score (Breck et al., 2017) that the other test files
did not check: non-finite numbers inside otherwise valid requests (Monitor 5, the request
side), one answer stepped through the model (Infra 5) and the feature code that step shows
(Data 7), a simpler model that must not be better (Model 5), and feature ablation (Data 2).

docs/checklist.md says which item each test stands behind, and what it does not cover.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from credit_risk import schema, scoring
from credit_risk.schema import CATEGORICAL, EXAMPLE_INPUT, FEATURES, NUMERIC, TARGET
from training import data
from training.feature_cost import ablation, earning_nothing, fit_on, pipeline_on
from training.model import fit

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@pytest.mark.parametrize("field", NUMERIC)
@pytest.mark.parametrize("value", NON_FINITE.values(), ids=NON_FINITE.keys())
def test_a_non_finite_number_in_a_valid_application_is_a_400_naming_the_field(
        client, field, value):
    """Every other field is valid, so the 400 can only come from the one non-finite number,
    and it must be refused as non-finite (pydantic's `finite_number`; for the count, as not
    an integer), not merely as out of range: a bound that NaN happens to fail is no guard
    against NaN."""
    body = json.dumps({**EXAMPLE_INPUT.model_dump(), field: value}, allow_nan=True)
    assert any(token in body for token in NON_FINITE), body
    response = client.post("/score", content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    errors = response.json()["detail"]
    reason = "int_type" if field == "previous_defaults" else "finite_number"
    assert [(error["loc"][-1], error["type"]) for error in errors] == [(field, reason)]


def test_the_same_body_without_the_non_finite_number_is_scored(client):
    body = json.dumps(EXAMPLE_INPUT.model_dump(), allow_nan=False)
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200


def step_through(model: scoring.LoadedModel, application: schema.LoanApplication) -> dict:
    """One application through the served pipeline, step by step: the table the service
    builds, the encoded feature vector, the baseline and the score after each boosting
    round, and the probability. Print it to debug a single answer."""
    frame = pd.DataFrame([application.model_dump()])[FEATURES]
    features, classifier = model.pipeline.named_steps.values()
    vector = features.transform(frame)
    names = features.get_feature_names_out()
    rounds = [float(raw[0]) for raw in classifier.staged_decision_function(vector)]
    return {"frame": frame, "vector": dict(zip(names, vector[0], strict=True)),
            "baseline": float(np.ravel(classifier._baseline_prediction)[0]),
            "rounds": rounds, "probability": 1 / (1 + math.exp(-rounds[-1]))}


def test_one_answer_can_be_stepped_through_and_the_steps_give_the_served_answer(
        client, service):
    """Infra 5: inference on a single example, observed step by step, recomposes exactly
    what the service answered."""
    steps = step_through(service.MODEL, EXAMPLE_INPUT)
    classifier = service.MODEL.pipeline.named_steps["classifier"]
    assert len(steps["rounds"]) == classifier.n_iter_ > 1
    assert steps["rounds"][0] != steps["baseline"], "the first round moves the score"
    full = service.MODEL.pipeline.predict_proba(steps["frame"])[0, 1]
    assert steps["probability"] == pytest.approx(full, abs=1e-12)
    answer = client.post("/score", json=EXAMPLE_INPUT.model_dump()).json()
    assert answer["probability_of_default"] == round(steps["probability"], 3)


def test_the_feature_code_encodes_each_field_as_specified(service):
    """Data 7: the one feature transformation training and serving share (training/model.py):
    numbers pass through unchanged, each category becomes exactly one indicator, and a
    category the model never saw becomes none."""
    vector = step_through(service.MODEL, EXAMPLE_INPUT)["vector"]
    application = EXAMPLE_INPUT.model_dump()
    assert list(vector)[:len(NUMERIC)] == [f"numeric__{name}" for name in NUMERIC]
    for name in NUMERIC:
        assert vector[f"numeric__{name}"] == application[name]
    for name, categories in schema.CATEGORIES.items():
        indicators = {category: vector[f"categorical__{name}_{category}"]
                      for category in categories}
        assert indicators == {c: float(c == application[name]) for c in categories}, name
    features = service.MODEL.pipeline.named_steps["features"]
    unseen = pd.DataFrame([{**application, "purpose": "yacht"}])[FEATURES]
    encoded = dict(zip(features.get_feature_names_out(), features.transform(unseen)[0],
                       strict=True))
    assert not any(value for name, value in encoded.items()
                   if name.startswith("categorical__purpose_"))


def baseline() -> Pipeline:
    """The simpler model: a logistic regression on scaled numbers and one-hot categories."""
    encode = ColumnTransformer([
        ("numeric", StandardScaler(), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    return Pipeline([("features", encode), ("classifier", LogisticRegression(max_iter=1000))])


def test_a_simpler_model_is_not_better(trained):
    """Model 5: on the held-out rows of the served model's own data snapshot, a logistic
    regression does not reach the gradient-boosted model's ROC AUC. (Measured: 0.7597 for
    the baseline against 0.7644: the trees buy little, which the checklist reports.)"""
    stored, _ = trained
    spec = stored.info.metadata["lineage"]["data"]
    train_frame, test_frame = data.snapshot(spec["rows"], spec["seed"],
                                            spec["covariate_drift"], spec["concept_drift"])
    simple = baseline().fit(train_frame[FEATURES], train_frame[TARGET])
    model = scoring.load(str(stored.tag)).pipeline
    simple_auc = roc_auc_score(test_frame[TARGET], simple.predict_proba(test_frame[FEATURES])[:, 1])
    model_auc = roc_auc_score(test_frame[TARGET], model.predict_proba(test_frame[FEATURES])[:, 1])
    assert model_auc > simple_auc, f"baseline {simple_auc:.4f} >= model {model_auc:.4f}"


# Data 2. Features whose removal cost no ROC AUC beyond noise when this test was written
# (about 0.001 or less each, within two standard errors of zero in some runs); the
# checklist (D2) reports them as earning nothing measurable. Any other feature that stops
# earning fails the test. The ablation lives in training/feature_cost.py, which also weighs
# each feature's cost against it (Data 3, tests/app/test_feature_cost.py).
WEAK = {"age_band", "term_months", "credit_history_years"}


def test_every_feature_earns_its_place_except_the_reported_ones():
    results = ablation()
    report = ", ".join(f"{name} {mean:+.4f}±{error:.4f}" for name, (mean, error) in results.items())
    assert earning_nothing(results) <= WEAK, f"ROC AUC lost without each: {report}"


def test_the_ablation_check_names_a_feature_that_is_pure_noise():
    """The judgement itself, on planted numbers: a drop within noise is named."""
    planted = {"loan_amount": (0.03, 0.002), "noise": (0.0004, 0.0006), "harmful": (-0.002, 0.001)}
    assert earning_nothing(planted) == {"noise", "harmful"}


def test_fit_is_what_the_ablation_fits():
    """The ablation refits training/model.py's pipeline; its full-feature model must be the
    one `fit` trains, or the ablation would measure some other model."""
    frame = data.generate(3_000, seed=4)
    ours = fit_on(pipeline_on(FEATURES), frame)
    sample = data.generate(300, seed=5)[FEATURES]
    np.testing.assert_array_equal(ours.predict_proba(sample), fit(frame).predict_proba(sample))
