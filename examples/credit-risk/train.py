"""Train, evaluate and save the credit-risk model with its lineage.

    python train.py                      # 20 000 rows, seed 0, no drift
    python train.py --seed 1 --rows 40000 --metrics metrics.json

Saving is idempotent: the model version is derived from the data hash, the training
parameters, the code and the library versions (training/registry.py), so training twice on
the same inputs reuses the stored version. With CREDIT_RISK_SIGNING_KEY set to a private key,
the stored model is signed.
"""

import argparse
import json
from pathlib import Path

from credit_risk.schema import FEATURES
from credit_risk.settings import Settings, SettingsError
from training import data, registry
from training.model import DEFAULT_PARAMS, evaluate, fit
from training.stability import UnstableModelError, check_fitted_model


def run(rows: int = 20_000, seed: int = 0, covariate_drift: float = 0.0,
        concept_drift: float = 0.0, params: dict = DEFAULT_PARAMS,
        signing_key: Path | None = None):
    """Generate data, train, evaluate on a held-out sample, save. Returns (stored, metrics)."""
    data_spec = {"rows": rows, "seed": seed, "covariate_drift": covariate_drift,
                 "concept_drift": concept_drift}
    return train_frames(data_spec, *data.snapshot(**data_spec), params, signing_key)


def train_frames(data_spec: dict, train_frame, test_frame, params: dict = DEFAULT_PARAMS,
                 signing_key: Path | None = None):
    """Train on `train_frame` (described by `data_spec` in the lineage), check the fitted
    model's numbers (training/stability.py: an unstable model raises UnstableModelError and
    nothing is stored), evaluate on `test_frame`, save; reuses the stored version of the
    same inputs."""
    data_sha256 = data.data_hash(train_frame)
    version = registry.model_version(data_sha256, params)
    stored = registry.stored(version)
    if stored is None:
        model = fit(train_frame, params)
        stability = check_fitted_model(model, train_frame[FEATURES])
        stored = registry.save(model, evaluate(model, test_frame), stability,
                               registry.lineage(data_spec, data_sha256, params), version,
                               signing_key)
    return stored, stored.info.metadata["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--covariate-drift", type=float, default=0.0)
    parser.add_argument("--concept-drift", type=float, default=0.0)
    parser.add_argument("--metrics", type=Path, default=Path("metrics.json"),
                        help="where to write the evaluation metrics")
    args = parser.parse_args()
    try:
        signing_key = Settings.from_env().signing_key
    except SettingsError as error:
        parser.exit(2, f"error: {error}\n")
    try:
        stored, metrics = run(args.rows, args.seed, args.covariate_drift, args.concept_drift,
                              signing_key=signing_key)
    except UnstableModelError as error:
        parser.exit(1, f"error: {error}\n")
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    overall = metrics["overall"]
    print(f"{stored.tag}: ROC AUC {overall['roc_auc']}, Brier {overall['brier']} "
          f"(metrics in {args.metrics})")


if __name__ == "__main__":
    main()
