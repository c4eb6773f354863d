"""The model: an sklearn Pipeline (one-hot encoding, gradient-boosted trees), its fit and its
evaluation overall and per age band."""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from credit_risk.schema import CATEGORICAL, DECISION_THRESHOLD, FEATURES, NUMERIC, TARGET
from training import validation

# The best of a seeded search (training/tuning.py, results/tuning.json).
DEFAULT_PARAMS = {
    "learning_rate": 0.08,
    "max_iter": 300,
    "max_leaf_nodes": 7,
    "l2_regularization": 1.0,
    "random_state": 0,
}


def build(params: dict) -> Pipeline:
    features = ColumnTransformer([
        ("numeric", "passthrough", NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         CATEGORICAL),
    ])
    classifier = HistGradientBoostingClassifier(
        early_stopping=True, validation_fraction=0.1, n_iter_no_change=10, **params)
    return Pipeline([("features", features), ("classifier", classifier)])


def fit(train_frame: pd.DataFrame, params: dict = DEFAULT_PARAMS,
        validate: bool = True) -> Pipeline:
    """Validate the table (unless told not to: experiments that degrade data on purpose),
    then fit. One OpenMP thread: on small machines more only spin."""
    if validate:
        validation.check_training_frame(train_frame)  # raises DataValidationError naming each fault
    with threadpool_limits(limits=1, user_api="openmp"):
        return build(params).fit(train_frame[FEATURES], train_frame[TARGET])


def evaluate(model: Pipeline, frame: pd.DataFrame,
             threshold: float = DECISION_THRESHOLD) -> dict:
    """ROC AUC, Brier score, default and decline rates, overall and per age band."""

    def scores(part: pd.DataFrame) -> dict:
        probability = model.predict_proba(part[FEATURES])[:, 1]
        return {
            "rows": len(part),
            "roc_auc": round(float(roc_auc_score(part[TARGET], probability)), 4),
            "brier": round(float(brier_score_loss(part[TARGET], probability)), 4),
            "default_rate": round(float(part[TARGET].mean()), 4),
            "decline_rate": round(float(np.mean(probability > threshold)), 4),
        }

    return {
        "overall": scores(frame),
        "by_age_band": {band: scores(part) for band, part in frame.groupby("age_band")},
    }
