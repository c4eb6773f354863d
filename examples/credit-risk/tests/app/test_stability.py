"""The numerical stability check on every fitted model (training/stability.py): the flagship
fit passes and its measurements are stored; planted faults stop training, storing nothing."""

import copy

import numpy as np
import pytest

import train
from credit_risk.schema import FEATURES
from training import data, registry, stability
from training.model import DEFAULT_PARAMS, fit
from training.stability import UnstableModelError, check_fitted_model

ABSURD = DEFAULT_PARAMS | {"learning_rate": 1e6}


@pytest.fixture(scope="module")
def table():
    return data.generate(5_000, seed=2)


@pytest.fixture(scope="module")
def fitted(table):
    return fit(table)


def problems_of(model, table) -> list[str]:
    with pytest.raises(UnstableModelError) as caught:
        check_fitted_model(model, table[FEATURES])
    return caught.value.problems


def test_the_flagship_fit_passes_and_its_measurements_are_stored(trained):
    stored, _ = trained
    measured = stored.info.metadata["stability"]
    assert 0 < measured["max_abs_leaf_value"] <= stability.MAX_ABS_LEAF_VALUE
    assert 0 < measured["max_abs_raw_score"] <= stability.MAX_ABS_RAW_SCORE
    assert measured["training_loss"]["end"] < measured["training_loss"]["start"]
    assert measured["saturated_share"] <= stability.MAX_SATURATED_SHARE
    assert measured["probability_std"] >= stability.MIN_PROBABILITY_STD


def test_an_absurd_learning_rate_is_refused_naming_each_bound(table):
    problems = problems_of(fit(table, ABSURD), table)
    for expected in ["largest |leaf value|", "largest |raw score|",
                     "share of saturated probabilities", "training loss diverged"]:
        assert any(problem.startswith(expected) for problem in problems), problems


@pytest.mark.parametrize("planted", [np.nan, np.inf])
def test_a_leaf_that_is_not_finite_is_refused(fitted, table, planted):
    model = copy.deepcopy(fitted)
    tree = model.named_steps["classifier"]._predictors[0][0]
    leaves = np.flatnonzero(tree.nodes["is_leaf"])
    tree.nodes["value"][leaves[np.argmax(tree.nodes["count"][leaves])]] = planted  # busiest
    problems = problems_of(model, table)
    assert f"leaf values: 1 of {stability.leaf_values(fitted).size} not finite" in problems
    assert any(p.startswith("raw scores on the training rows:") for p in problems), problems


def test_probabilities_that_are_all_the_same_are_refused(fitted, table):
    model = copy.deepcopy(fitted)
    for iteration in model.named_steps["classifier"]._predictors:
        for tree in iteration:
            tree.nodes["value"][:] = 0.0  # every row gets the baseline: the mean default rate
    problems = problems_of(model, table)
    assert problems == ["probabilities nearly all the same: standard deviation 0 below 0.01"]


def test_an_unstable_fit_stops_training_and_stores_nothing():
    train_frame, test_frame = data.snapshot(rows=2_000, seed=5)
    with pytest.raises(UnstableModelError, match="not numerically stable"):
        train.train_frames({"rows": 2_000, "seed": 5}, train_frame, test_frame, ABSURD)
    assert registry.stored(registry.model_version(data.data_hash(train_frame), ABSURD)) is None


def test_the_train_command_stops_with_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(stability, "MAX_ABS_RAW_SCORE", 1.0)  # tighter than any real model
    metrics = tmp_path / "metrics.json"
    monkeypatch.setattr("sys.argv", ["train.py", "--rows", "2000", "--seed", "6",
                                     "--metrics", str(metrics)])
    with pytest.raises(SystemExit) as exit_:
        train.main()
    assert exit_.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: fitted model is not numerically stable: largest |raw score|")
    assert error.count("\n") == 1 and "Traceback" not in error
    assert not metrics.exists()
    version = registry.model_version(data.data_hash(data.generate(2_000, 6)), DEFAULT_PARAMS)
    assert registry.stored(version) is None
