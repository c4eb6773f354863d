"""Tests written for items of the ML Test Score (Breck et al., 2017) that the other test files
did not check: non-finite numbers inside otherwise valid requests (Monitor 5, the request
side), one answer stepped through the model (Infra 5) and the feature code that step shows
(Data 7). The checks that retrain models (Model 5, Data 2) are in tests/retrain/.

docs/checklist.md says which item each test stands behind, and what it does not cover.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest

from credit_risk import schema, scoring
from credit_risk.schema import EXAMPLE_INPUT, FEATURES, NUMERIC

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
