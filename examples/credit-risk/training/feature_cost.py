"""What each feature earns and what it costs (ML Test Score, Data 2 and Data 3).

Earns: the ROC AUC the pipeline loses when it is trained without the feature (the ablation).
Costs: the CPU time the served pipeline takes to score one application (what `/score` does)
with the feature, minus the time without it, and the bytes it adds to the stored model. CPU
time of the scoring thread, not wall time: on a shared machine the wall time of a few
milliseconds mostly measures who else was running. The model
without a feature is fitted with the same number of boosting rounds as the full one, so the
difference is the feature's own cost, not early stopping choosing another tree count.

    python -m training.feature_cost     # writes training/feature_cost.json
"""

import json
import math
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from credit_risk.schema import CATEGORICAL, EXAMPLE_INPUT, FEATURES, NUMERIC, TARGET
from training import data
from training.model import DEFAULT_PARAMS, build

RESULTS = Path(__file__).with_name("feature_cost.json")
ABLATION_SEEDS = (0, 1, 2)
ABLATION_ROWS = 10_000
# --8<-- [start:budget]
# The budget. On average the model pays its full latency for all the ROC AUC it earns above
# chance (0.5). A feature may pay up to PRICE_SLACK times that average price for the AUC it
# earns (the upper end of its ablation interval: the benefit of the doubt), on top of a
# floor that any input may cost: LATENCY_FLOOR_MS per request, 1 % of the 250 ms p99
# objective (monitoring/alerts.yml), so nine inputs at the floor take under a tenth of it,
# and BYTES_FLOOR, twice what one numeric input needs to be stored at all (its bin
# thresholds and the encoder's bookkeeping: the `bytes` of feature_cost.json).
PRICE_SLACK = 2.0
LATENCY_FLOOR_MS = 2.5
BYTES_FLOOR = 8_192
# --8<-- [end:budget]
TIMING_ROUNDS = 3
CALLS_PER_ROUND = 30


def pipeline_on(columns: list[str], seed: int = 0, extra: tuple = ()) -> Pipeline:
    """training/model.py's pipeline on `columns` alone; `extra` holds further
    (name, transformer, source columns) steps, each used when its name is in `columns`."""
    model = build({**DEFAULT_PARAMS, "random_state": seed})
    model.set_params(features=ColumnTransformer([
        ("numeric", "passthrough", [c for c in NUMERIC if c in columns]),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         [c for c in CATEGORICAL if c in columns]),
        *[step for step in extra if step[0] in columns],
    ]))
    return model


def fit_on(model: Pipeline, frame: pd.DataFrame) -> Pipeline:
    """Fit on the frame's TARGET, one OpenMP thread (as training/model.py's `fit`)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.fit(frame.drop(columns=TARGET), frame[TARGET])


def ablation_auc(train_frame: pd.DataFrame, test_frame: pd.DataFrame, columns: list[str],
                 seed: int, extra: tuple = ()) -> float:
    """ROC AUC of the pipeline trained on `columns` alone."""
    fitted = fit_on(pipeline_on(columns, seed, extra), train_frame[[*columns, TARGET]])
    return roc_auc_score(test_frame[TARGET], fitted.predict_proba(test_frame[columns])[:, 1])


def ablation(names: list[str] = FEATURES, columns: list[str] = FEATURES, extra: tuple = (),
             add=lambda frame: frame) -> dict[str, tuple[float, float]]:
    """Each of `names`: (mean drop in ROC AUC when it is left out of `columns`, standard
    error of the mean), over seeds that change both the training rows and the model's own
    randomness; every model is scored on the same 20 000 held-out rows. `add` adds planted
    columns to each frame."""
    test_frame = add(data.generate(20_000, seed=500))
    drops: dict[str, list[float]] = {name: [] for name in names}
    for seed in ABLATION_SEEDS:
        train_frame = add(data.generate(ABLATION_ROWS, seed=seed))
        full = ablation_auc(train_frame, test_frame, columns, seed, extra)
        for name in names:
            rest = [column for column in columns if column != name]
            drops[name].append(full - ablation_auc(train_frame, test_frame, rest, seed, extra))
    return {name: (float(np.mean(d)), float(np.std(d, ddof=1) / math.sqrt(len(d))))
            for name, d in drops.items()}


def earning_nothing(results: dict[str, tuple[float, float]]) -> set[str]:
    """Features whose drop is not above zero by two standard errors."""
    return {name for name, (mean, error) in results.items() if mean - 2 * error <= 0}


def request_seconds(model: Pipeline, application: dict) -> float:
    """Least CPU time of CALLS_PER_ROUND scorings of one application, as `/score` builds it."""
    times = []
    with threadpool_limits(limits=1, user_api="openmp"):
        for _ in range(CALLS_PER_ROUND):
            start = time.thread_time()
            model.predict_proba(pd.DataFrame([application]))
            times.append(time.thread_time() - start)
    return min(times)


def costs(names: list[str] = FEATURES, columns: list[str] = FEATURES, extra: tuple = (),
          add=lambda frame: frame) -> dict:
    """The full model's ROC AUC, latency (ms per application) and size (bytes), the timing
    noise (ms, between two timings of the full model), and what each of `names` adds to the
    latency and the size. Each latency is the least of every call's."""
    frame, test_frame = (add(data.generate(rows, seed)) for rows, seed in
                         ((ABLATION_ROWS, 0), (20_000, 500)))
    full = fit_on(pipeline_on(columns, extra=extra), frame[[*columns, TARGET]])
    rounds = {"max_iter": int(full.named_steps["classifier"].n_iter_), "early_stopping": False}
    without = {}
    for name in names:
        rest = [column for column in columns if column != name]
        model = pipeline_on(rest, extra=extra).set_params(
            **{f"classifier__{key}": value for key, value in rounds.items()})
        without[name] = fit_on(model, frame[[*rest, TARGET]])
    application = add(pd.DataFrame([EXAMPLE_INPUT.model_dump()])).to_dict("records")[0]
    seconds: dict[str, list[float]] = {name: [] for name in ["full", "again", *names]}
    for _ in range(TIMING_ROUNDS):  # interleaved, so a busy moment hits every model alike
        for name, model in {"full": full, "again": full, **without}.items():
            kept = {k: v for k, v in application.items() if k in model.feature_names_in_}
            seconds[name].append(request_seconds(model, kept))
    full_ms = 1e3 * min(seconds["full"])
    size = len(pickle.dumps(full))
    return {
        "full": {"roc_auc": roc_auc_score(test_frame[TARGET],
                                          full.predict_proba(test_frame[columns])[:, 1]),
                 "latency_ms": full_ms, "bytes": size, "boosting_rounds": rounds["max_iter"]},
        "noise_ms": 1e3 * abs(min(seconds["again"]) - min(seconds["full"])),
        "features": {name: {
            "latency_ms": full_ms - 1e3 * min(seconds[name]),
            "bytes": size - len(pickle.dumps(without[name]))} for name in names},
    }


# --8<-- [start:over-budget]
def over_budget(benefit: dict[str, tuple[float, float]], cost: dict) -> dict[str, str]:
    """Features whose latency or bytes exceed the budget, each with the reason."""
    full, problems = cost["full"], {}
    for name, (mean, error) in benefit.items():
        share = max(mean + 2 * error, 0) / (full["roc_auc"] - 0.5)  # of the AUC earned above chance
        allowed_ms = LATENCY_FLOOR_MS + PRICE_SLACK * share * full["latency_ms"]
        allowed_bytes = BYTES_FLOOR + PRICE_SLACK * share * full["bytes"]
        spent = cost["features"][name]
        if spent["latency_ms"] > allowed_ms or spent["bytes"] > allowed_bytes:
            problems[name] = (f"+{spent['latency_ms']:.3f} ms (budget {allowed_ms:.3f}), "
                              f"+{spent['bytes']} bytes (budget {allowed_bytes:.0f}) "
                              f"for {mean:+.4f}±{error:.4f} ROC AUC")
    return problems
# --8<-- [end:over-budget]


def measure(names: list[str] = FEATURES, columns: list[str] = FEATURES, extra: tuple = (),
            add=lambda frame: frame) -> dict:
    """Each of `names`: its benefit and its cost, and those over budget (the figures of
    training/feature_cost.json); the arguments are those of `ablation` and `costs`."""
    benefit, cost = ablation(names, columns, extra, add), costs(names, columns, extra, add)
    return {"params": DEFAULT_PARAMS,
            "full": {key: round(value, 4) for key, value in cost["full"].items()},
            "noise_ms": round(cost["noise_ms"], 4),
            "features": {name: {"roc_auc_drop": round(benefit[name][0], 4),
                                "standard_error": round(benefit[name][1], 4),
                                "latency_ms": round(cost["features"][name]["latency_ms"], 4),
                                "bytes": cost["features"][name]["bytes"]}
                         for name in names},
            "over_budget": over_budget(benefit, cost)}


if __name__ == "__main__":
    RESULTS.write_text(json.dumps(measure(), indent=2) + "\n")
    print(f"wrote {RESULTS}")
