"""Does the offline metric track the online impact? Models of deliberately different quality
(fewer rows, fewer features, flipped labels) are trained on one snapshot and scored on its
held-out rows twice:

- offline: ROC AUC against the held-out labels, as training/model.py's `evaluate` does;
- online: the expected profit per application of the loans the service's decision rule
  (credit_risk.schema.decide) approves, from the generator's true default probabilities
  (training/data.py's `default_probability`): what the book earns on average had that model
  been serving.

    python -m training.offline_online     # writes results/offline_online.json
"""

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from credit_risk.schema import DECISION_THRESHOLD, FEATURES, TARGET, decide
from training import data
from training.model import fit
from training.registry import EXAMPLE_DIR

RESULTS = EXAMPLE_DIR / "results" / "offline_online.json"
LOSS_GIVEN_DEFAULT = 0.25  # share of the loan amount lost when a loan defaults
# What a repaid loan earns, as a share of its amount: the margin that makes the service's
# decision threshold the break-even probability of default.
MARGIN = LOSS_GIVEN_DEFAULT * DECISION_THRESHOLD / (1 - DECISION_THRESHOLD)


def flipped(frame: pd.DataFrame, share: float, seed: int = 1) -> pd.DataFrame:
    """The frame with `share` of its labels, drawn at random, turned over."""
    turned = np.random.default_rng(seed).random(len(frame)) < share
    return frame.assign(**{TARGET: np.where(turned, 1 - frame[TARGET], frame[TARGET])})


def blanked(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame with each of `columns` set to its most common value: nothing to learn from."""
    return frame.assign(**{column: frame[column].mode()[0] for column in columns})


# --8<-- [start:variants]
VARIANTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "all rows": lambda frame: frame,
    "10 % of labels flipped": lambda frame: flipped(frame, 0.10),
    "2,000 rows": lambda frame: frame.iloc[:2_000],
    "no debt-to-income, no previous defaults":
        lambda frame: blanked(frame, ["debt_to_income", "previous_defaults"]),
    "income, age band and credit history only":
        lambda frame: blanked(frame, ["debt_to_income", "previous_defaults", "employment",
                                      "loan_amount", "purpose", "term_months"]),
    "1,000 rows, 30 % of labels flipped": lambda frame: flipped(frame.iloc[:1_000], 0.30),
}
# --8<-- [end:variants]


# --8<-- [start:online]
def expected_profit(applications: pd.DataFrame, probability: np.ndarray) -> float:
    """EUR per application: each loan the decision rule approves earns MARGIN of its amount
    if repaid and loses LOSS_GIVEN_DEFAULT of it in default, weighted by its true
    probability of default; declined applications earn nothing."""
    approved = np.array([decide(p, DECISION_THRESHOLD) == "approve" for p in probability])
    true_default = data.default_probability(applications)
    per_loan = applications["loan_amount"].to_numpy() * (
        MARGIN * (1 - true_default) - LOSS_GIVEN_DEFAULT * true_default)
    return float(per_loan[approved].sum() / len(applications))
# --8<-- [end:online]


def compare(rows: int = 20_000, seed: int = 0) -> dict:
    """Offline ROC AUC and online expected profit of every variant, and their Spearman
    rank correlation, on snapshot `seed` (without drift)."""
    train_frame, held_out = data.snapshot(rows, seed)
    models = []
    for name, degrade in VARIANTS.items():
        model = fit(degrade(train_frame), validate=False)  # degraded on purpose
        probability = model.predict_proba(held_out[FEATURES])[:, 1]
        models.append({
            "model": name,
            "roc_auc": round(float(roc_auc_score(held_out[TARGET], probability)), 4),
            "profit_per_application": round(expected_profit(held_out, probability), 1),
        })
    rank_correlation = spearmanr([m["roc_auc"] for m in models],
                                 [m["profit_per_application"] for m in models]).statistic
    return {"snapshot": {"rows": rows, "seed": seed},
            "loss_given_default": LOSS_GIVEN_DEFAULT, "margin": MARGIN,
            "models": models, "spearman": round(float(rank_correlation), 3)}


def main() -> None:
    result = compare()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for model in result["models"]:
        print(f"{model['model']:45} ROC AUC {model['roc_auc']:.4f}  "
              f"EUR {model['profit_per_application']:8.1f} per application")
    print(f"Spearman {result['spearman']} (in {RESULTS.relative_to(EXAMPLE_DIR)})")


if __name__ == "__main__":
    main()
