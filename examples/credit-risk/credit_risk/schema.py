"""The contract, in one place: fields, categories, bounds, request and response models, the
example input and the decision rule. Importable without a model or a server; the service,
training's validation, the synthetic data, the release smoke test, the benchmarks, the
notebooks and the tests all use these names."""

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

MODEL_NAME = "credit_risk"

AgeBand = Literal["18-25", "26-35", "36-50", "51-65", "65+"]
Employment = Literal["employed", "self_employed", "unemployed", "retired", "student"]
Purpose = Literal["debt_consolidation", "home_improvement", "car", "education", "medical",
                  "business", "other"]
Term = Literal[12, 24, 36, 60]

AGE_BANDS, EMPLOYMENT, PURPOSES, TERMS = (list(get_args(t)) for t in (AgeBand, Employment,
                                                                         Purpose, Term))
CATEGORIES = {"age_band": AGE_BANDS, "employment": EMPLOYMENT, "purpose": PURPOSES,
              "term_months": TERMS}
# Inclusive bounds of the numeric inputs: the API refuses values outside them, training's
# validation refuses tables with them.
BOUNDS = {
    "annual_income": (5_000, 1_000_000),
    "loan_amount": (500, 100_000),
    "debt_to_income": (0, 1.5),
    "credit_history_years": (0, 60),
    "previous_defaults": (0, 10),
}
NUMERIC = list(BOUNDS)
CATEGORICAL = list(CATEGORIES)
FEATURES = NUMERIC + CATEGORICAL
TARGET = "default"

MAX_APPLICATIONS_PER_REQUEST = 500  # /score_batch
# Probability of default above which an application is declined (stored with each model).
DECISION_THRESHOLD = 0.5


def decide(probability: float, threshold: float) -> Literal["approve", "decline"]:
    """The decision rule: decline above the threshold."""
    return "decline" if probability > threshold else "approve"


class LoanApplication(BaseModel):
    """One application. Out-of-range, unknown or extra fields are answered with a 400."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # strict: a number must be a JSON number (not true, not "48000"), a count an integer.
    annual_income: float = Field(ge=BOUNDS["annual_income"][0], le=BOUNDS["annual_income"][1],
                                 strict=True, description="Gross, in EUR")
    loan_amount: float = Field(ge=BOUNDS["loan_amount"][0], le=BOUNDS["loan_amount"][1],
                               strict=True, description="Requested, in EUR")
    debt_to_income: float = Field(ge=BOUNDS["debt_to_income"][0], le=BOUNDS["debt_to_income"][1],
                                  strict=True, description="Monthly debt over monthly income")
    credit_history_years: float = Field(ge=BOUNDS["credit_history_years"][0],
                                        le=BOUNDS["credit_history_years"][1], strict=True)
    previous_defaults: int = Field(ge=BOUNDS["previous_defaults"][0],
                                   le=BOUNDS["previous_defaults"][1], strict=True)
    age_band: AgeBand
    employment: Employment
    purpose: Purpose
    term_months: Term


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    applications: list[LoanApplication] = Field(min_length=1,
                                                max_length=MAX_APPLICATIONS_PER_REQUEST)


# Stable codes of the reasons a decline can give, one per input that may be a reason
# (credit_risk/reasons.py says which inputs those are, and why not the others).
ReasonCode = Literal["ANNUAL_INCOME", "LOAN_AMOUNT", "DEBT_TO_INCOME", "PREVIOUS_DEFAULTS",
                     "EMPLOYMENT", "PURPOSE", "TERM_MONTHS"]


class Reason(BaseModel):
    code: ReasonCode = Field(description="Stable: it never changes with the wording")
    field: str = Field(description="The input this reason is about")
    text: str = Field(description="The reason, in a sentence for the applicant")


class Score(BaseModel):
    probability_of_default: float
    decision: Literal["approve", "decline"]
    model_version: str
    request_id: str = Field(description="Quote it when reporting the outcome of this loan")
    reasons: list[Reason] = Field(description=(
        "For a decline, its principal reasons, the most important first; empty for an "
        "approval, and for a decline that no single input explains"))


class Scores(BaseModel):
    scores: list[Score]


EXAMPLE_INPUT = LoanApplication(
    annual_income=48_000, loan_amount=12_000, debt_to_income=0.25, credit_history_years=9,
    previous_defaults=0, age_band="26-35", employment="employed", purpose="car", term_months=36,
)
