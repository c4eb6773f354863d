"""The reasons a declined applicant is given (credit_risk/reasons.py), from the trained model.

- Through the API: an approval has none, a decline has some, on /score and /score_batch
  alike; a cached decline keeps them; the prediction log records their codes only.
- They are right: an input made bad on purpose, until the application is declined, is the
  first reason, on both runtimes.
- They are stable: the same application gets the same reasons every time and on both
  runtimes, and one euro more income keeps the top reason of nearly every held-out decline.
- Every held-out decline gets a reason, and never an input the feature policy restricts.
"""

import pandas as pd
import pytest
from prometheus_client import REGISTRY

from credit_risk import scoring
from credit_risk.jsonl_log import read_prediction_log
from credit_risk.reasons import REASONS, REFERENCE
from credit_risk.schema import AGE_BANDS, EXAMPLE_INPUT, FEATURES, LoanApplication
from training import data, feature_policy

STABLE_SHARE = 0.95  # held-out declines whose top reason survives one euro more income


@pytest.fixture(scope="module")
def both(trained):
    stored, _ = trained
    return (scoring.load(str(stored.tag)), scoring.load(str(stored.tag), runtime="onnx"))


@pytest.fixture(scope="module")
def held_out_declines(both) -> list[LoanApplication]:
    """The held-out applications the trained model declines."""
    model = both[0]
    held_out = data.snapshot()[1][FEATURES]
    declined = held_out[scoring.probabilities(model, held_out) > model.threshold]
    return [LoanApplication(**row) for row in declined.to_dict("records")]


def raised_until_declined(model, base: LoanApplication, field: str, values):
    """(the last approved, the first declined) of `base` with `field` raised through
    `values`; `base` must be approved."""
    approved = base
    assert scoring.score(model, [base])[0].decision == "approve"
    for value in values:
        application = base.model_copy(update={field: value})
        if scoring.score(model, [application])[0].decision == "decline":
            return approved, application
        approved = application
    raise AssertionError(f"raising {field} to {values[-1]} does not decline {base}")


def codes(scores) -> list[list[str]]:
    return [[reason.code for reason in score.reasons] for score in scores]


# Raised alone from an approved application; the last value of each is its upper bound.
MADE_BAD = {
    "loan_amount": (EXAMPLE_INPUT, range(20_000, 100_001, 10_000)),
    "previous_defaults": (EXAMPLE_INPUT.model_copy(update={"loan_amount": 24_000}),
                          range(1, 11)),
}


@pytest.fixture(scope="module")
def near_the_threshold(both) -> tuple[LoanApplication, LoanApplication]:
    """(an approval, a decline): the example input with its loan amount raised."""
    return raised_until_declined(both[0], EXAMPLE_INPUT, "loan_amount",
                                 MADE_BAD["loan_amount"][1])


@pytest.fixture(scope="module")
def a_decline(near_the_threshold) -> LoanApplication:
    return near_the_threshold[1]


def test_an_approval_has_no_reasons_and_a_decline_has_them_on_both_endpoints(
        client, near_the_threshold):
    approved, declined = (client.post("/score", json=a.model_dump()).json()
                          for a in near_the_threshold)
    assert (approved["decision"], approved["reasons"]) == ("approve", [])
    assert declined["decision"] == "decline" and declined["reasons"]
    for reason in declined["reasons"]:
        assert reason == REASONS[reason["field"]].model_dump()
    batch = client.post("/score_batch", json={"applications": [
        application.model_dump() for application in near_the_threshold]})
    assert [s["reasons"] for s in batch.json()["scores"]] == [[], declined["reasons"]]


@pytest.mark.parametrize("field", MADE_BAD)
def test_the_input_made_bad_on_purpose_is_the_first_reason(both, field):
    base, values = MADE_BAD[field]
    for model in both:
        _, declined = raised_until_declined(model, base, field, values)
        [answer] = scoring.score(model, [declined])
        assert answer.reasons[0].field == field, (model.runtime, answer.reasons)


def test_the_same_application_gets_the_same_reasons_every_time_and_on_both_runtimes(
        both, held_out_declines):
    sklearn_model, onnx_model = both
    first = codes(scoring.score(sklearn_model, held_out_declines))
    assert codes(scoring.score(sklearn_model, held_out_declines)) == first
    on_onnx = codes(scoring.score(onnx_model, held_out_declines))
    same = sum(a == b for a, b in zip(first, on_onnx, strict=True))
    print(f"ONNX gives the same reasons as sklearn for {same} of {len(first)} held-out declines")
    assert on_onnx == first


def test_one_euro_more_income_keeps_the_top_reason(both, held_out_declines):
    model = both[0]
    before = codes(scoring.score(model, held_out_declines))
    richer = [a.model_copy(update={"annual_income": a.annual_income + 1})
              for a in held_out_declines]
    after = codes(scoring.score(model, richer))
    share = sum(a[:1] == b[:1] for a, b in zip(before, after, strict=True)) / len(before)
    print(f"top reason unchanged by 1 EUR more income: {share:.1%} of {len(before)} declines")
    assert share >= STABLE_SHARE


def test_every_held_out_decline_has_a_reason_and_none_is_a_restricted_input(
        both, held_out_declines):
    restricted = set(feature_policy.load()["restricted"])
    model = both[0]
    assert all(score.reasons for score in scoring.score(model, held_out_declines))
    # Every age band of every decline: age never becomes a reason, whatever its weight.
    in_every_band = [a.model_copy(update={"age_band": band})
                     for a in held_out_declines for band in AGE_BANDS]
    named = {reason.field for score in scoring.score(model, in_every_band)
             for reason in score.reasons}
    assert named and not named & restricted, named


def test_the_reference_applicant_is_well_below_the_decision_threshold(both):
    model = both[0]
    reference = [EXAMPLE_INPUT.model_copy(update={**REFERENCE, "age_band": band,
                                                  "credit_history_years": years})
                 for band in AGE_BANDS for years in (0, 30)]
    frame = pd.DataFrame([application.model_dump() for application in reference])
    assert max(scoring.probabilities(model, frame)) < model.threshold / 2


def test_a_cached_decline_keeps_its_reasons(client, service, a_decline):
    def hits():
        return REGISTRY.get_sample_value("credit_risk_cache_lookups_total",
                                         {"result": "hit"}) or 0

    request = a_decline.model_copy(update={"annual_income": a_decline.annual_income + 7})
    first = client.post("/score", json=request.model_dump()).json()
    before = hits()
    second = client.post("/score", json=request.model_dump()).json()
    assert hits() == before + 1
    assert first["reasons"] and second["reasons"] == first["reasons"]


def test_the_prediction_log_records_the_reason_codes_and_no_more(client, service, a_decline):
    answer = client.post("/score", json=a_decline.model_dump()).json()
    logged = {line["request_id"]: line for line in read_prediction_log(service.SETTINGS.logs)}
    line = logged[answer["request_id"]]
    assert line["reasons"] == [reason["code"] for reason in answer["reasons"]]
    assert set(line) == set(FEATURES) | set(answer) | {"time"}
