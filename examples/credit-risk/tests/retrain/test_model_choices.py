"""ML Test Score items that retrain models, so they run with the slower tiers: a simpler
model that must not be better (Model 5) and feature ablation (Data 2).

docs/checklist.md says which item each test stands behind, and what it does not cover.
"""

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from credit_risk import scoring
from credit_risk.schema import CATEGORICAL, FEATURES, NUMERIC, TARGET
from training import data
from training.feature_cost import ablation, earning_nothing, fit_on, pipeline_on
from training.model import fit


def baseline() -> Pipeline:
    """The simpler model: a logistic regression on scaled numbers and one-hot categories."""
    encode = ColumnTransformer([
        ("numeric", StandardScaler(), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    return Pipeline([("features", encode), ("classifier", LogisticRegression(max_iter=1000))])


def test_a_simpler_model_is_not_better(trained):
    """Model 5: on the held-out rows of the served model's own data snapshot, a logistic
    regression does not reach the gradient-boosted model's ROC AUC. (Measured: 0.7597 for
    the baseline against 0.7644: the trees buy little, which the checklist reports.)"""
    stored, _ = trained
    spec = stored.info.metadata["lineage"]["data"]
    train_frame, test_frame = data.snapshot(spec["rows"], spec["seed"],
                                            spec["covariate_drift"], spec["concept_drift"])
    simple = baseline().fit(train_frame[FEATURES], train_frame[TARGET])
    model = scoring.load(str(stored.tag)).pipeline
    simple_auc = roc_auc_score(test_frame[TARGET], simple.predict_proba(test_frame[FEATURES])[:, 1])
    model_auc = roc_auc_score(test_frame[TARGET], model.predict_proba(test_frame[FEATURES])[:, 1])
    assert model_auc > simple_auc, f"baseline {simple_auc:.4f} >= model {model_auc:.4f}"


# Data 2. Features whose removal costs no ROC AUC beyond two standard errors under the
# model's parameters (training/feature_cost.json holds the same ablation's figures);
# the checklist (D2) and the model card's known issues report them as earning nothing
# measurable. Any other feature that stops earning fails the test. The ablation lives in
# training/feature_cost.py, which also weighs each feature's cost against it (Data 3,
# tests/app/test_feature_cost.py).
WEAK = {"age_band", "term_months"}


def test_every_feature_earns_its_place_except_the_reported_ones():
    results = ablation()
    report = ", ".join(f"{name} {mean:+.4f}±{error:.4f}" for name, (mean, error) in results.items())
    assert earning_nothing(results) <= WEAK, f"ROC AUC lost without each: {report}"


def test_the_ablation_check_names_a_feature_that_is_pure_noise():
    """The judgement itself, on planted numbers: a drop within noise is named."""
    planted = {"loan_amount": (0.03, 0.002), "noise": (0.0004, 0.0006), "harmful": (-0.002, 0.001)}
    assert earning_nothing(planted) == {"noise", "harmful"}


def test_fit_is_what_the_ablation_fits():
    """The ablation refits training/model.py's pipeline; its full-feature model must be the
    one `fit` trains, or the ablation would measure some other model."""
    frame = data.generate(3_000, seed=4)
    ours = fit_on(pipeline_on(FEATURES), frame)
    sample = data.generate(300, seed=5)[FEATURES]
    np.testing.assert_array_equal(ours.predict_proba(sample), fit(frame).predict_proba(sample))
