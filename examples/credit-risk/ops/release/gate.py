"""Stage 2, gate: the candidate must meet absolute floors and be no worse than production,
overall and on every age band, on the same held-out rows (the new snapshot's)."""

from dataclasses import dataclass

import pandas as pd

from ops.release.candidate import Candidate
from training import registry


# --8<-- [start:gate]
@dataclass(frozen=True)
class GatePolicy:
    min_roc_auc: float = 0.70        # absolute floor, overall
    max_brier: float = 0.20          # absolute ceiling, overall
    max_drop_overall: float = 0.01   # ROC AUC the candidate may lose against production
    max_drop_per_slice: float = 0.03  # ... on any age band (smaller samples, wider margin)


@dataclass
class Gate:
    passed: bool
    reasons: list[str]
    comparison: pd.DataFrame | None  # ROC AUC per slice: production, candidate, change


def gate(candidate: Candidate, production_model: str | None,
         policy: GatePolicy = GatePolicy()) -> Gate:
    """Pass the candidate only if it meets the floors and is no worse than production,
    overall and on every age band, on the same held-out rows (the new snapshot's)."""
    overall = candidate.metrics["overall"]
    reasons = []
    if overall["roc_auc"] < policy.min_roc_auc:
        reasons.append(f"ROC AUC {overall['roc_auc']} is below the floor {policy.min_roc_auc}")
    if overall["brier"] > policy.max_brier:
        reasons.append(f"Brier score {overall['brier']} is above the ceiling {policy.max_brier}")
    comparison = None
    if production_model and production_model != candidate.model:
        comparison = registry.compare(production_model, candidate.model, candidate.held_out)
        comparison.columns = ["production", "candidate", "change"]
        for slice_name, row in comparison.iterrows():
            allowed = (policy.max_drop_overall if slice_name == "overall"
                       else policy.max_drop_per_slice)
            if row["change"] < -allowed:
                where = "overall" if slice_name == "overall" else f"on age band {slice_name}"
                reasons.append(f"ROC AUC {where} fell by {-row['change']:.4f} against "
                               f"production ({row['production']} -> {row['candidate']}), "
                               f"more than the {allowed} allowed")
    return Gate(not reasons, reasons, comparison)
# --8<-- [end:gate]
