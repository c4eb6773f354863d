"""Checks on a fitted model before it is stored: is it numerically sane?

A fit can go wrong without raising: a learning rate typed a thousand times too large, a
NaN that slipped past the table checks into a leaf, a model that says the same thing for
everyone. `check_fitted_model` looks inside the fitted gradient-boosted trees and at their
answers on the training rows, and refuses the model if any value is not finite or is beyond
a bound a sane model of this kind stays well inside:

- leaf values: each tree's contribution to a row's log-odds of default. Every leaf is shrunk
  by the learning rate (leaves of the tuning search's boldest setting, 0.3, stay near 1);
  one tree moving a row's odds by e**10 (about 22 000 times) is not a step of boosting.
- raw scores (decision_function): the summed log-odds. |log-odds| 20 is a probability within
  2e-9 of 0 or 1; the generator's true log-odds (training/data.py) stay far inside that for
  nearly every row, and trees fitted to 0/1 labels average many rows in each leaf.
- training loss (`train_score_`, recorded because training/model.py fits with early
  stopping): its first entry is the loss of the constant model that predicts the training
  default rate; boosting that ends with a higher loss diverged.
- probabilities: at most 5 % of rows below 0.001 or above 0.999 (even the generator's true
  probabilities are that extreme for under 1 % of rows, with or without drift), and a spread
  (standard deviation) of at least 0.01: a model whose answers vary less ranks no one.

The measured values are returned, and train.py stores them in the model's metadata under
"stability", so a reviewer can see how far inside its bounds each model sits.
"""

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

MAX_ABS_LEAF_VALUE = 10.0
MAX_ABS_RAW_SCORE = 20.0
SATURATED_BELOW = 1e-3  # a probability below this, or above 1 minus it, is saturated
MAX_SATURATED_SHARE = 0.05
MIN_PROBABILITY_STD = 0.01


class UnstableModelError(ValueError):
    """The fitted model failed the stability check; `problems` lists each bound it broke."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("fitted model is not numerically stable: " + "; ".join(problems))


def leaf_values(model: Pipeline) -> np.ndarray:
    """Every leaf value of every tree of the pipeline's HistGradientBoostingClassifier.
    `_predictors` is private to scikit-learn (pinned in the lineage): an upgrade that renames
    it stops training with an AttributeError rather than skipping the check."""
    trees = [tree for iteration in model.named_steps["classifier"]._predictors
             for tree in iteration]
    return np.concatenate([tree.nodes["value"][tree.nodes["is_leaf"] == 1] for tree in trees])


def _not_finite(name: str, values: np.ndarray) -> list[str]:
    count = int(np.count_nonzero(~np.isfinite(values)))
    return [f"{name}: {count} of {values.size} not finite"] if count else []


def _above(name: str, value: float, bound: float) -> list[str]:
    if value <= bound:
        return []
    return [f"{name} {value:.4g} above the bound {bound:g} ({value / bound:.3g} times it)"]


def _largest_abs(values: np.ndarray) -> float:
    return float(np.abs(values[np.isfinite(values)]).max(initial=0.0))


def check_fitted_model(model: Pipeline, features: pd.DataFrame) -> dict:
    """Measure the fitted `model` on its training rows' `features`; raise UnstableModelError
    naming every value out of bounds, else return the measured values."""
    leaves = leaf_values(model)
    raw = model.decision_function(features)
    probability = model.predict_proba(features)[:, 1]
    loss = -model.named_steps["classifier"].train_score_  # scoring="loss" records -loss
    saturated = float(np.mean((probability < SATURATED_BELOW)
                              | (probability > 1 - SATURATED_BELOW)))
    spread = float(np.nanstd(probability))
    problems = (
        _not_finite("leaf values", leaves)
        + _above("largest |leaf value|", _largest_abs(leaves), MAX_ABS_LEAF_VALUE)
        + _not_finite("raw scores on the training rows", raw)
        + _above("largest |raw score|", _largest_abs(raw), MAX_ABS_RAW_SCORE)
        + _not_finite("training loss", loss)
        + _not_finite("probabilities on the training rows", probability)
        + _above("share of saturated probabilities", saturated, MAX_SATURATED_SHARE)
    )
    if loss[-1] > loss[0]:
        problems.append(f"training loss diverged: {loss[-1]:.4g} at the end, above "
                        f"{loss[0]:.4g} at the start")
    if spread < MIN_PROBABILITY_STD:
        problems.append(f"probabilities nearly all the same: standard deviation {spread:.3g} "
                        f"below {MIN_PROBABILITY_STD:g}")
    if problems:
        raise UnstableModelError(problems)
    return {
        "max_abs_leaf_value": round(_largest_abs(leaves), 4),
        "max_abs_raw_score": round(_largest_abs(raw), 4),
        "training_loss": {"start": round(float(loss[0]), 4), "end": round(float(loss[-1]), 4)},
        "saturated_share": round(saturated, 4),
        "probability_std": round(spread, 4),
    }
