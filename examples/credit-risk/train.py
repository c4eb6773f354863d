"""Train, evaluate and save the credit-risk model with its lineage.

    python train.py                      # 20 000 rows, seed 0, no drift
    python train.py --seed 1 --rows 40000 --metrics metrics.json

Saving is idempotent: the model version is derived from the data hash, the training
parameters and this code, so training twice on the same inputs reuses the stored version.
"""

import argparse
import hashlib
import json
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

import artifact
import data

MODEL_NAME = "credit_risk"
HERE = Path(__file__).resolve().parent
DEFAULT_PARAMS = {
    "learning_rate": 0.08,
    "max_iter": 150,
    "max_leaf_nodes": 31,
    "l2_regularization": 0.0,
    "random_state": 0,
}
# Probability of default above which an application is declined.
DECISION_THRESHOLD = 0.5


def build_pipeline(params: dict) -> Pipeline:
    features = ColumnTransformer([
        ("numeric", "passthrough", data.NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         data.CATEGORICAL),
    ])
    classifier = HistGradientBoostingClassifier(
        early_stopping=True, validation_fraction=0.1, n_iter_no_change=10, **params)
    return Pipeline([("features", features), ("classifier", classifier)])


def fit(train_frame: pd.DataFrame, params: dict = DEFAULT_PARAMS) -> Pipeline:
    """Validate the table, then fit. One OpenMP thread: on small machines more only spin."""
    # Imported here: the service imports this module, and the bento ships no validation.py.
    import validation

    validation.check_training_frame(train_frame)  # raises DataValidationError naming each fault
    with threadpool_limits(limits=1, user_api="openmp"):
        return build_pipeline(params).fit(train_frame[data.FEATURES], train_frame[data.TARGET])


def evaluate(model: Pipeline, frame: pd.DataFrame) -> dict:
    """ROC AUC, Brier score and default rate, overall and per age band."""

    def scores(part: pd.DataFrame) -> dict:
        probability = model.predict_proba(part[data.FEATURES])[:, 1]
        return {
            "rows": len(part),
            "roc_auc": round(float(roc_auc_score(part[data.TARGET], probability)), 4),
            "brier": round(float(brier_score_loss(part[data.TARGET], probability)), 4),
            "default_rate": round(float(part[data.TARGET].mean()), 4),
            "decline_rate": round(float(np.mean(probability > DECISION_THRESHOLD)), 4),
        }

    return {
        "overall": scores(frame),
        "by_age_band": {band: scores(part) for band, part in frame.groupby("age_band")},
    }


def git_commit() -> str:
    """The commit this code comes from, or "uncommitted" outside git or with local changes."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0 or git("status", "--porcelain", "--", ".").stdout.strip():
        return "uncommitted"
    return head.stdout.strip()


# --8<-- [start:lineage]
def code_hash() -> str:
    """sha256 over the files that decide what the model is."""
    digest = hashlib.sha256()
    for name in ["data.py", "train.py", "artifact.py"]:
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()


def model_version(data_sha256: str, params: dict) -> str:
    key = json.dumps({"data": data_sha256, "params": params, "code": code_hash()}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def lineage(data_spec: dict, data_sha256: str, params: dict) -> dict:
    return {
        "git_commit": git_commit(),
        "code_sha256": code_hash(),
        "data": {**data_spec, "sha256": data_sha256},
        "params": params,
        "python": platform.python_version(),
        "libraries": {name: version(name) for name in
                      ["scikit-learn", "numpy", "pandas", "skops", "bentoml"]},
    }
# --8<-- [end:lineage]


def save(model: Pipeline, metrics: dict, lineage_info: dict, version_tag: str) -> bentoml.Model:
    """Store the model as skops under credit_risk:<version>, or return that version if stored.

    The stored directory gets a manifest and, if CREDIT_RISK_SIGNING_KEY names a private
    key, a signature (see artifact.seal).
    """
    tag = bentoml.Tag(MODEL_NAME, version_tag)
    try:
        return bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        pass
    with bentoml.models.create(
        tag,
        labels={"owner": "credit-risk-team", "stage": "candidate",
                "data_sha256": lineage_info["data"]["sha256"][:12]},
        metadata={"metrics": metrics, "lineage": lineage_info,
                  "decision_threshold": DECISION_THRESHOLD},
    ) as stored:
        sha256 = artifact.dump(model, Path(stored.path))
        stored.info.metadata.update({
            "artifact": {"file": artifact.ARTIFACT, "format": "skops", "sha256": sha256,
                         "trusted_types": artifact.TRUSTED_TYPES},
        })
    stored = bentoml.models.get(tag)  # the store's copy, now with model.yaml written
    try:
        artifact.seal(stored.path)  # manifest.json, and model.sig when a signing key is set
    except BaseException:
        bentoml.models.delete(tag)  # no half-sealed model left behind for the next run to reuse
        raise
    return stored


def run(rows: int = 20_000, seed: int = 0, covariate_drift: float = 0.0,
        concept_drift: float = 0.0, params: dict = DEFAULT_PARAMS):
    """Generate data, train, evaluate on a held-out sample, save. Returns (model, metrics)."""
    data_spec = {"rows": rows, "seed": seed, "covariate_drift": covariate_drift,
                 "concept_drift": concept_drift}
    train_frame = data.generate(rows, seed, covariate_drift, concept_drift)
    test_frame = data.generate(rows // 4, seed + 10_000, covariate_drift, concept_drift)
    data_sha256 = data.data_hash(train_frame)
    model = fit(train_frame, params)
    metrics = evaluate(model, test_frame)
    stored = save(model, metrics, lineage(data_spec, data_sha256, params),
                  model_version(data_sha256, params))
    return stored, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--covariate-drift", type=float, default=0.0)
    parser.add_argument("--concept-drift", type=float, default=0.0)
    parser.add_argument("--metrics", type=Path, default=Path("metrics.json"),
                        help="where to write the evaluation metrics")
    args = parser.parse_args()
    stored, metrics = run(args.rows, args.seed, args.covariate_drift, args.concept_drift)
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    overall = metrics["overall"]
    print(f"{stored.tag}: ROC AUC {overall['roc_auc']}, Brier {overall['brier']} "
          f"(metrics in {args.metrics})")


if __name__ == "__main__":
    main()
