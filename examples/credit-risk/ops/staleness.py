"""How fast the model goes stale (ML Test Score, Model 4): quality against drift strength.

The flagship's data are synthetic, so a model cannot be left to age for a year and watched.
What ages a credit model is the world changing under it, which `training.data` can dial:
`concept_drift` from 0 (the world it was trained on) to 1 (debt and credit history predict
default much less). This scores the stored model on fresh applications at each strength
(several seeds) and finds where its ROC AUC crosses the release gate's floor: past that point
the model would no longer be released, so the drift job's view of it is the trigger to retrain.

    python -m ops.staleness                    # writes results/staleness.json
"""

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from credit_risk import scoring
from credit_risk.schema import MODEL_NAME, TARGET
from ops.release.gate import GatePolicy
from training import data

RESULTS = Path(__file__).parents[1] / "results" / "staleness.json"
STRENGTHS = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
SEEDS = (101, 102, 103)  # not the training seeds: fresh applications every time
ROWS = 5_000             # the size of the held-out set the gate judges


def curve(model: scoring.LoadedModel, strengths=STRENGTHS, seeds=SEEDS,
          rows: int = ROWS) -> list[dict]:
    """ROC AUC (mean and standard deviation over seeds) at each concept-drift strength."""
    points = []
    for strength in strengths:
        aucs = []
        for seed in seeds:
            frame = data.generate(rows, seed, concept_drift=strength)
            aucs.append(roc_auc_score(frame[TARGET], scoring.probabilities(model, frame)))
        points.append({"concept_drift": strength, "roc_auc": round(float(np.mean(aucs)), 4),
                       "sd": round(float(np.std(aucs, ddof=1)), 4)})
    return points


def crossing(points: list[dict], floor: float) -> float | None:
    """The drift strength where mean ROC AUC first falls below `floor`, interpolated
    linearly between the two measured strengths around it; None if it never does."""
    for before, after in zip(points, points[1:], strict=False):
        if before["roc_auc"] >= floor > after["roc_auc"]:
            share = (before["roc_auc"] - floor) / (before["roc_auc"] - after["roc_auc"])
            span = after["concept_drift"] - before["concept_drift"]
            return round(before["concept_drift"] + share * span, 3)
    return 0.0 if points and points[0]["roc_auc"] < floor else None


def measure(model: scoring.LoadedModel) -> dict:
    floor = GatePolicy().min_roc_auc
    points = curve(model)
    return {"model_version": model.version, "floor": floor, "rows": ROWS, "seeds": list(SEEDS),
            "points": points, "retrain_at_concept_drift": crossing(points, floor)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=f"{MODEL_NAME}:latest")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = measure(scoring.load(args.model))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.out}: ROC AUC falls below {result['floor']} at concept drift "
          f"{result['retrain_at_concept_drift']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
