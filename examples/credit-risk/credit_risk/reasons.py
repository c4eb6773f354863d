"""The principal reasons behind a decline, from the model itself.

Each input that may be a reason is set, alone, to its value in REFERENCE (a low-risk
applicant) and the application is scored again; the inputs are ranked by how much that
lowers the probability of default, and the ones that lower it by more than MIN_FALL are the
reasons, at most MAX_REASONS of them. All the variants of all the declines in a request go
to the model in one call (one row per input and decline), so the cost is one more model
call, on either runtime, and only for requests with a decline.

Why not SHAP: its values split a score exactly among the inputs, interactions included,
which this does not; but its TreeExplainer explains the sklearn trees, not the ONNX graph
that scores on the onnx runtime, its values are per one-hot column and must be summed back
per input, and it brings shap, slicer, numba and llvmlite (a JIT compiler and its LLVM) into
the image. The substitution here needs no new package, asks whichever runtime serves, and
says something an applicant can act on: "had this input been that of a low-risk applicant,
the risk would have been this much lower". Its limits: one input is changed at a time, so
inputs that act together (income and the amount asked) may each be named; the reasons
depend on the REFERENCE chosen; and an input at least as good as the reference is never one.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd

from credit_risk.schema import Reason

# Only inputs training/feature_policy.yaml lists as `allowed` may be a reason. age_band is a
# protected characteristic and credit_history_years its proxy (both `restricted`): naming
# them to an applicant would state that the decision rested on age, which the policy allows
# only after a legal review. tests/unit/test_reasons_rules.py checks this list against
# the policy.
REASONS = {
    "annual_income": Reason(code="ANNUAL_INCOME", field="annual_income",
                            text="Income is low for the amount requested"),
    "loan_amount": Reason(code="LOAN_AMOUNT", field="loan_amount",
                          text="The amount requested is high for the income"),
    "debt_to_income": Reason(code="DEBT_TO_INCOME", field="debt_to_income",
                             text="Debt is high relative to income"),
    "previous_defaults": Reason(code="PREVIOUS_DEFAULTS", field="previous_defaults",
                                text="Previous defaults on the credit file"),
    "employment": Reason(code="EMPLOYMENT", field="employment",
                         text="Current employment status"),
    "purpose": Reason(code="PURPOSE", field="purpose", text="The purpose of the loan"),
    "term_months": Reason(code="TERM_MONTHS", field="term_months",
                          text="The length of the repayment term"),
}
# A low-risk applicant, within the schema's bounds: employed, with more income, a smaller
# loan and less debt than the median applicant of training/data.py, over two years, with no
# previous default. Fixed here, not learnt, so every stored model is explained against the
# same applicant; tests/app/test_reasons.py checks the model scores it well below its
# decision threshold.
REFERENCE = {"annual_income": 60_000, "loan_amount": 8_000, "debt_to_income": 0.15,
             "previous_defaults": 0, "employment": "employed", "purpose": "home_improvement",
             "term_months": 24}
MIN_FALL = 0.05  # in probability of default: a smaller fall is no principal reason
MAX_REASONS = 4  # Regulation B's commentary: more than four reasons are unlikely to help


def principal_reasons(probabilities: Callable[[pd.DataFrame], np.ndarray],
                      declined: pd.DataFrame, probability: np.ndarray) -> list[list[Reason]]:
    """The reasons for each row of `declined` (the FEATURES columns), given the model's
    `probabilities` function and the probability of default it gave each row."""
    if declined.empty:
        return []
    variants = pd.concat([declined.assign(**{name: value}) for name, value in REFERENCE.items()],
                         ignore_index=True)
    falls = np.asarray(probability) - probabilities(variants).reshape(len(REFERENCE), -1)
    names = list(REFERENCE)
    answers = []
    for row in falls.T:  # one row per declined application, one column per input
        order = np.argsort(-row, kind="stable")  # equal falls keep REFERENCE's order
        answers.append([REASONS[names[i]] for i in order if row[i] > MIN_FALL][:MAX_REASONS])
    return answers
