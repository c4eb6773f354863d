"""Training-data validation: clean and drifted tables pass, broken or poisoned ones are refused."""

import typing

import numpy as np
import pytest

from credit_risk import schema
from training import data, validation
from training.model import fit
from training.validation import DataValidationError


@pytest.fixture(scope="module")
def clean():
    return data.generate(20_000, seed=0)


def relabel_defaults(frame, column, value, share, seed=0):
    """Poison: mark `share` of the defaults in one segment as repaid."""
    poisoned = frame.copy()
    defaults = poisoned.index[(poisoned[column] == value) & (poisoned[schema.TARGET] == 1)]
    chosen = np.random.default_rng(seed).choice(defaults, int(share * len(defaults)), replace=False)
    poisoned.loc[chosen, schema.TARGET] = 0
    return poisoned


def flip_labels(frame, share, seed=0):
    """Poison: flip `share` of all labels at random."""
    poisoned = frame.copy()
    chosen = np.random.default_rng(seed).choice(len(frame), int(share * len(frame)), replace=False)
    poisoned.loc[chosen, schema.TARGET] = 1 - poisoned.loc[chosen, schema.TARGET]
    return poisoned


def test_clean_tables_pass_and_match_the_expected_profile(clean):
    profile = validation.check_training_frame(clean)
    for column, offsets in validation.EXPECTED_OFFSETS.items():
        assert profile[column].keys() == offsets.keys()
    validation.check_training_frame(data.generate(4_000, seed=3))  # small tables too


def test_expected_profile_is_the_reference_datas():
    reference = data.generate(200_000, seed=0)
    assert validation.label_profile(reference) == validation.EXPECTED_OFFSETS


@pytest.mark.parametrize("amount", [0.3, 1.0])
def test_a_riskier_population_is_not_mistaken_for_poisoning(amount):
    drifted = data.generate(20_000, seed=4, covariate_drift=amount)
    assert drifted[schema.TARGET].mean() > 0.35  # far more defaults overall than the reference
    validation.check_training_frame(drifted)


def test_relabelled_defaults_in_one_segment_are_caught(clean):
    poisoned = relabel_defaults(clean, "purpose", "business", share=0.5)
    with pytest.raises(DataValidationError) as caught:
        validation.check_training_frame(poisoned)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("purpose=business: default rate 0.15")


def test_heavy_random_label_flipping_is_caught(clean):
    with pytest.raises(DataValidationError, match="employment=unemployed"):
        validation.check_training_frame(flip_labels(clean, share=0.2))


def test_concept_drift_is_flagged_too_and_needs_a_reviewed_profile():
    """A documented limit: labels that change while inputs do not look like poisoning."""
    shifted = data.generate(20_000, seed=0, concept_drift=1.0)
    with pytest.raises(DataValidationError, match="employment=self_employed"):
        validation.check_training_frame(shifted)
    validation.check_training_frame(shifted, expected=validation.label_profile(shifted))


def break_table(frame, fault):
    broken = frame.copy()
    if fault == "missing column":
        return broken.drop(columns="loan_amount")
    if fault == "null":
        broken.loc[:2, "annual_income"] = np.nan
    elif fault == "out of range":
        broken.loc[:2, "debt_to_income"] = -0.5
    elif fault == "fractional count":
        broken["previous_defaults"] = broken["previous_defaults"].astype(float)
        broken.loc[:2, "previous_defaults"] = 0.5
    elif fault == "unknown category":
        broken.loc[:2, "employment"] = "astronaut"
    elif fault == "bad label":
        broken.loc[:2, schema.TARGET] = 2
    elif fault == "duplicates":
        return broken.iloc[np.r_[0:len(frame), 0:len(frame) // 20]]
    elif fault == "too few rows":
        return broken.head(500)
    return broken


@pytest.mark.parametrize("fault, message", [
    ("missing column", "missing columns: ['loan_amount']"),
    ("null", "annual_income: 3 null values"),
    ("out of range", "debt_to_income: 3 values outside [0, 1.5]"),
    ("fractional count", "previous_defaults: 3 values are not whole numbers"),
    ("unknown category", "employment: unknown values ['astronaut']"),
    ("bad label", "default: labels must be 0 or 1"),
    ("duplicates", "of rows are exact duplicates"),
    ("too few rows", "only 500 rows"),
])
def test_broken_tables_are_refused_with_the_reason(clean, fault, message):
    with pytest.raises(DataValidationError) as caught:
        validation.check_training_frame(break_table(clean, fault))
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_training_refuses_a_poisoned_table(clean):
    poisoned = relabel_defaults(clean, "employment", "self_employed", share=0.5)
    with pytest.raises(DataValidationError, match="employment=self_employed"):
        fit(poisoned)


def test_accepted_values_match_what_the_service_accepts():
    """Training data and API requests are held to the same ranges and categories."""
    fields = schema.LoanApplication.model_fields
    for column, (low, high) in schema.BOUNDS.items():
        rules = fields[column].metadata  # annotated_types.Ge(ge=...) and Le(le=...)
        accepted = (next(r.ge for r in rules if hasattr(r, "ge")),
                    next(r.le for r in rules if hasattr(r, "le")))
        assert accepted == (low, high), column
    for column, allowed in schema.CATEGORIES.items():
        assert list(typing.get_args(fields[column].annotation)) == list(allowed), column
