"""The data generator: reproducible, valid for the API, and drifting when asked to."""

import typing

import pytest

from credit_risk import schema
from training import data


def test_same_seed_gives_the_same_data_and_hash():
    first = data.data_hash(data.generate(2_000, seed=3))
    assert first == data.data_hash(data.generate(2_000, seed=3))
    assert first != data.data_hash(data.generate(2_000, seed=4))


def test_every_generated_row_is_a_valid_request():
    frame = data.generate(2_000, seed=5, covariate_drift=1.0)
    for row in frame[schema.FEATURES].to_dict("records"):
        schema.LoanApplication(**row)


def test_the_data_hash_sees_a_change_below_the_sixth_digit():
    frame = data.generate(200, seed=3)
    changed = frame.copy()
    changed.loc[0, "debt_to_income"] += 1e-9
    assert data.data_hash(changed) != data.data_hash(frame)


@pytest.mark.parametrize("field, values", schema.CATEGORIES.items())
def test_generated_categories_are_the_api_categories(field, values):
    assert set(data.generate(5_000, seed=1)[field]) == set(values)
    annotation = schema.LoanApplication.model_fields[field].annotation
    assert list(typing.get_args(annotation)) == values


def test_covariate_drift_moves_the_inputs():
    before = data.generate(10_000, seed=1)
    after = data.generate(10_000, seed=1, covariate_drift=1.0)
    assert after.annual_income.median() < 0.8 * before.annual_income.median()
    unemployed_before = (before.employment == "unemployed").mean()
    assert (after.employment == "unemployed").mean() > 2 * unemployed_before


def test_concept_drift_moves_the_rule_not_the_inputs():
    before = data.generate(20_000, seed=1)
    after = data.generate(20_000, seed=1, concept_drift=1.0)
    assert after[schema.FEATURES].equals(before[schema.FEATURES])
    self_employed = before.employment == "self_employed"
    assert after.default[self_employed].mean() > before.default[self_employed].mean() + 0.1


def test_knobs_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError):
        data.generate(10, covariate_drift=1.5)
