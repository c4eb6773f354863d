"""The rules of credit_risk/reasons.py, on a made-up model whose effects are known: ranking,
the minimum fall, the cap, one model call, and which inputs may be a reason at all."""

from typing import get_args

import numpy as np
import pandas as pd

from credit_risk import reasons
from credit_risk.reasons import MAX_REASONS, MIN_FALL, REASONS, REFERENCE
from credit_risk.schema import EXAMPLE_INPUT, FEATURES, LoanApplication, ReasonCode
from training import feature_policy

# Additive effects on the probability of default; the youngest band has the largest.
# Powers of two, so that equal falls are exactly equal in floating point.
EFFECTS = {"previous_defaults": 0.125, "debt_to_income": 0.25, "unemployed": 0.25,
           "18-25": 0.5}


def made_up_model(calls: list):
    def probabilities(frame: pd.DataFrame) -> np.ndarray:
        calls.append(len(frame))
        return (0.05 + EFFECTS["previous_defaults"] * frame["previous_defaults"]
                + EFFECTS["debt_to_income"] * frame["debt_to_income"]
                + EFFECTS["unemployed"] * (frame["employment"] == "unemployed")
                + EFFECTS["18-25"] * (frame["age_band"] == "18-25")).to_numpy(dtype=float)
    return probabilities


def explain(applications: list[LoanApplication], calls: list | None = None):
    calls = [] if calls is None else calls
    frame = pd.DataFrame([a.model_dump() for a in applications])
    probabilities = made_up_model(calls)
    return reasons.principal_reasons(probabilities, frame, probabilities(frame))


def test_inputs_are_ranked_by_how_much_the_reference_value_lowers_the_risk():
    declined = EXAMPLE_INPUT.model_copy(update={"previous_defaults": 3, "debt_to_income": 0.75,
                                                "employment": "unemployed"})
    [found] = explain([declined])
    # falls: previous_defaults 0.375, employment 0.25, debt_to_income 0.15
    assert [r.code for r in found] == ["PREVIOUS_DEFAULTS", "EMPLOYMENT", "DEBT_TO_INCOME"]


def test_a_fall_no_larger_than_the_minimum_is_no_reason():
    def debt_falling_by(fall: float) -> LoanApplication:
        debt = REFERENCE["debt_to_income"] + fall / EFFECTS["debt_to_income"]
        return EXAMPLE_INPUT.model_copy(update={"debt_to_income": debt, "previous_defaults": 1})

    below, above = explain([debt_falling_by(MIN_FALL * 0.99), debt_falling_by(MIN_FALL * 1.01)])
    assert [r.code for r in below] == ["PREVIOUS_DEFAULTS"]
    assert [r.code for r in above] == ["PREVIOUS_DEFAULTS", "DEBT_TO_INCOME"]


def test_an_input_better_than_the_reference_is_never_a_reason():
    better = EXAMPLE_INPUT.model_copy(update={"debt_to_income": 0.0, "previous_defaults": 0})
    assert explain([better]) == [[]]


def test_equal_falls_keep_the_references_order_and_the_list_is_capped(monkeypatch):
    declined = EXAMPLE_INPUT.model_copy(update={"previous_defaults": 2, "debt_to_income": 0.0,
                                                "employment": "unemployed"})
    # falls: previous_defaults 0.25 and employment 0.25, equal
    assert [r.code for r in explain([declined])[0]] == ["PREVIOUS_DEFAULTS", "EMPLOYMENT"]
    monkeypatch.setattr(reasons, "MAX_REASONS", 1)
    assert [r.code for r in explain([declined])[0]] == ["PREVIOUS_DEFAULTS"]
    assert MAX_REASONS <= 4


def test_all_declines_of_a_request_are_explained_in_one_model_call():
    calls = []
    many = [EXAMPLE_INPUT.model_copy(update={"previous_defaults": k}) for k in range(1, 6)]
    found = explain(many, calls)
    assert calls == [5, 5 * len(REFERENCE)]  # the scoring call, then one for every variant
    assert [[r.code for r in one] for one in found] == [["PREVIOUS_DEFAULTS"]] * 5
    none_declined = pd.DataFrame(columns=FEATURES)
    assert reasons.principal_reasons(made_up_model(calls), none_declined, np.empty(0)) == []
    assert len(calls) == 2  # no decline: no model call


def test_age_is_never_a_reason_even_where_it_drives_the_risk_most():
    young = EXAMPLE_INPUT.model_copy(update={"age_band": "18-25", "previous_defaults": 1})
    [found] = explain([young])
    assert [r.code for r in found] == ["PREVIOUS_DEFAULTS"]


def test_only_inputs_the_feature_policy_allows_can_be_reasons():
    policy = feature_policy.load()
    assert set(REASONS) <= set(policy["allowed"])
    assert not set(REASONS) & (set(policy["restricted"]) | set(policy["forbidden"]))
    assert "age_band" in policy["restricted"]


def test_every_reason_has_a_reference_value_a_declared_code_and_a_sentence():
    assert list(REASONS) == list(REFERENCE)
    assert sorted(r.code for r in REASONS.values()) == sorted(get_args(ReasonCode))
    assert all(r.field == name and r.text for name, r in REASONS.items())


def test_the_reference_values_are_within_the_schemas_bounds():
    LoanApplication(**{**EXAMPLE_INPUT.model_dump(), **REFERENCE})  # raises if not
