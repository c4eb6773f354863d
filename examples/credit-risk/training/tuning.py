"""A small, seeded hyperparameter search around training/model.py's DEFAULT_PARAMS.

Candidates drawn from SEARCH_SPACE and the defaults themselves are cross-validated on the
same folds of the training rows (ROC AUC). The defaults count as tuned while
the best candidate beats them by no more than the noise between folds: the standard
deviation, over the folds, of the best candidate's score minus the defaults' score.

    python -m training.tuning     # writes results/tuning.json
"""

import json

import numpy as np
from sklearn.model_selection import GridSearchCV, ParameterSampler, StratifiedKFold
from threadpoolctl import threadpool_limits

from credit_risk.schema import FEATURES, TARGET
from training import data
from training.model import DEFAULT_PARAMS, build
from training.registry import EXAMPLE_DIR

RESULTS = EXAMPLE_DIR / "results" / "tuning.json"
# --8<-- [start:search]
SEARCH_SPACE = {
    "learning_rate": [0.03, 0.05, 0.08, 0.15, 0.3],
    "max_iter": [50, 150, 300],
    "max_leaf_nodes": [7, 15, 31, 63],
    "l2_regularization": [0.0, 0.1, 1.0, 10.0],
}
CANDIDATES = 10  # drawn from SEARCH_SPACE, besides the defaults
FOLDS = 4
ROWS = 20_000    # the default snapshot's training rows, as train.py uses them
# --8<-- [end:search]


def search(rows: int = ROWS, seed: int = 0) -> dict:
    """Cross-validated ROC AUC of the defaults and of each drawn candidate, best first,
    with the per-fold scores, and the verdict of the rule in the module docstring."""
    train_frame = data.generate(rows, seed)
    drawn = list(ParameterSampler(SEARCH_SPACE, CANDIDATES, random_state=seed))
    tunable = {name: value for name, value in DEFAULT_PARAMS.items() if name in SEARCH_SPACE}
    grid = [{f"classifier__{name}": [value] for name, value in params.items()}
            for params in [tunable, *drawn]]
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    searcher = GridSearchCV(build(DEFAULT_PARAMS), grid, scoring="roc_auc", cv=folds)
    with threadpool_limits(limits=1, user_api="openmp"):
        searcher.fit(train_frame[FEATURES], train_frame[TARGET])
    found = searcher.cv_results_
    by_fold = np.array([found[f"split{k}_test_score"] for k in range(FOLDS)]).T
    candidates = [{"params": {name.removeprefix("classifier__"): value
                              for name, value in found["params"][i].items()},
                   "defaults": i == 0,
                   "roc_auc": round(float(by_fold[i].mean()), 4),
                   "by_fold": [round(float(score), 4) for score in by_fold[i]]}
                  for i in map(int, np.argsort(-by_fold.mean(axis=1), kind="stable"))]
    best = int(np.argmax(by_fold.mean(axis=1)))
    gap = by_fold[best] - by_fold[0]
    return {
        "rows": rows, "seed": seed, "folds": FOLDS, "search_space": SEARCH_SPACE,
        "defaults": tunable,
        "gap": round(float(gap.mean()), 4),
        "noise": round(float(gap.std(ddof=1)), 4),
        "defaults_are_tuned": bool(gap.mean() <= gap.std(ddof=1)),
        "candidates": candidates,
    }


def main() -> None:
    result = search()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for candidate in result["candidates"]:
        print(f"{candidate['roc_auc']:.4f}{' (defaults)' if candidate['defaults'] else ''}  "
              f"{candidate['params']}")
    print(f"best - defaults = {result['gap']} ROC AUC, fold noise {result['noise']}: "
          f"defaults {'are' if result['defaults_are_tuned'] else 'are NOT'} tuned "
          f"(in {RESULTS.relative_to(EXAMPLE_DIR)})")


if __name__ == "__main__":
    main()
