"""Synthetic loan applications with a default label, seeded, with knobs for drift.

Nothing is downloaded: `generate()` draws every row from fixed distributions, so the same
arguments always give the same table (and the same `data_hash`).

Two knobs move the world away from the one the model was trained on:

- `covariate_drift` (0 to 1) moves the *inputs*: incomes fall, loans grow, credit
  histories shorten, more applicants are young, unemployed or borrowing for debt
  consolidation. The rule that turns features into defaults stays the same.
- `concept_drift` (0 to 1) moves the *relationship*: at 1, debt-to-income and credit history
  no longer matter, while self-employed applicants, car and education loans and the over-65s
  default much more often, as in a downturn that hits them first. The feature distributions
  stay the same.

A model monitor should flag the first from the inputs alone; the second shows up only when
delayed labels arrive and performance drops.
"""

import hashlib

import numpy as np
import pandas as pd

from credit_risk.schema import AGE_BANDS, BOUNDS, EMPLOYMENT, PURPOSES, TARGET, TERMS


def _shifted(probabilities, towards, amount):
    """Mix a categorical distribution with another one by `amount` (0 keeps it)."""
    mixed = (1 - amount) * np.asarray(probabilities) + amount * np.asarray(towards)
    return mixed / mixed.sum()


def generate(n: int = 20_000, seed: int = 0, covariate_drift: float = 0.0,
             concept_drift: float = 0.0) -> pd.DataFrame:
    """Draw `n` applications and their default labels; see the module docstring for the knobs."""
    if not (0 <= covariate_drift <= 1 and 0 <= concept_drift <= 1):
        raise ValueError("drift knobs must lie between 0 and 1")
    rng = np.random.default_rng(seed)
    c = covariate_drift

    age_band = rng.choice(AGE_BANDS, n, p=_shifted(
        [0.15, 0.30, 0.30, 0.17, 0.08], [0.45, 0.35, 0.12, 0.06, 0.02], c))
    employment = rng.choice(EMPLOYMENT, n, p=_shifted(
        [0.68, 0.12, 0.06, 0.08, 0.06], [0.45, 0.15, 0.25, 0.05, 0.10], c))
    purpose = rng.choice(PURPOSES, n, p=_shifted(
        [0.30, 0.15, 0.20, 0.08, 0.07, 0.10, 0.10], [0.55, 0.08, 0.12, 0.06, 0.10, 0.04, 0.05], c))
    term_months = rng.choice(TERMS, n, p=[0.15, 0.25, 0.35, 0.25])

    income_scale = {"employed": 52_000, "self_employed": 58_000, "unemployed": 16_000,
                    "retired": 30_000, "student": 12_000}
    annual_income = np.array([income_scale[e] for e in employment]) * rng.lognormal(0, 0.45, n)
    annual_income = np.clip(annual_income * (1 - 0.35 * c), *BOUNDS["annual_income"]).round(-2)
    loan_amount = np.clip(rng.lognormal(np.log(12_000) + 0.5 * c, 0.7, n),
                          *BOUNDS["loan_amount"]).round(-1)
    debt_to_income = np.clip(rng.beta(2, 5, n) * (1 + 0.6 * c), *BOUNDS["debt_to_income"]).round(3)
    years_since_18 = np.array([{"18-25": 4, "26-35": 12, "36-50": 25, "51-65": 40, "65+": 50}[a]
                               for a in age_band])
    credit_history_years = np.clip(rng.normal(years_since_18 * 0.7 * (1 - 0.4 * c), 3),
                                   *BOUNDS["credit_history_years"]).round(1)
    previous_defaults = rng.poisson(0.25 + 0.4 * c, n).clip(*BOUNDS["previous_defaults"])

    applications = pd.DataFrame({
        "annual_income": annual_income,
        "loan_amount": loan_amount,
        "debt_to_income": debt_to_income,
        "credit_history_years": credit_history_years,
        "previous_defaults": previous_defaults,
        "age_band": age_band,
        "employment": employment,
        "purpose": purpose,
        "term_months": term_months,
    })
    default = rng.random(n) < default_probability(applications, concept_drift)
    return applications.assign(**{TARGET: default.astype(int)})


def default_probability(applications: pd.DataFrame, concept_drift: float = 0.0) -> np.ndarray:
    """The true probability of default of each application in the generator's world: what a
    perfect model would say, and what a simulated outcome is drawn from."""
    column = {name: applications[name].to_numpy() for name in applications.columns}
    employment, purpose, age_band = (column[name] for name in ["employment", "purpose", "age_band"])
    k = concept_drift
    logit = (
        -2.6 - 0.4 * k
        + (1.8 - 1.2 * k) * (column["loan_amount"] / column["annual_income"])
        + (2.4 - 2.4 * k) * column["debt_to_income"]
        - 0.035 * (1 - k) * column["credit_history_years"]
        + (0.55 + 0.3 * k) * column["previous_defaults"]
        + np.select([employment == "unemployed", employment == "student",
                     employment == "self_employed"], [1.1, 0.5, 0.25 + 1.5 * k], 0.0)
        + np.select([purpose == "debt_consolidation", purpose == "business",
                     purpose == "medical", purpose == "car", purpose == "education"],
                    [0.35, 0.45, 0.3, 1.2 * k, 0.8 * k], 0.0)
        + 0.006 * (column["term_months"] - 36)
        + np.where(age_band == "18-25", 0.3, 0.0) + np.where(age_band == "65+", 0.9 * k, 0.0)
    )
    return 1 / (1 + np.exp(-logit))


# --8<-- [start:hash]
def data_hash(frame: pd.DataFrame) -> str:
    """sha256 of the table as CSV with every float written in full (shortest round-trip
    form): any change of a value, a row or a column changes the hash, however small."""
    csv = frame.to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(csv.encode()).hexdigest()
# --8<-- [end:hash]


def snapshot(rows: int = 20_000, seed: int = 0, covariate_drift: float = 0.0,
             concept_drift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, held-out rows) of one data snapshot: the held-out quarter is drawn
    with its own seed from the same world."""
    return (generate(rows, seed, covariate_drift, concept_drift),
            generate(rows // 4, seed + 10_000, covariate_drift, concept_drift))
