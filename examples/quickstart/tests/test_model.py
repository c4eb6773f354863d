"""Unit tests: the model and the prediction logic, without the BentoML runtime."""

import pytest
from pydantic import ValidationError

import train


def test_model_is_accurate_enough():
    _, accuracy = train.train()
    assert accuracy >= 0.9


def test_training_is_reproducible():
    first, _ = train.train(seed=0)
    second, _ = train.train(seed=0)
    assert (first[-1].coef_ == second[-1].coef_).all()


def test_predict_returns_a_species_with_probabilities(saved_model):
    from service import EXAMPLE_INPUT, predict

    model, _ = train.train()
    result = predict(model, EXAMPLE_INPUT, model_version="test")
    assert result.species == "setosa"
    assert set(result.probabilities) == set(train.SPECIES)
    assert sum(result.probabilities.values()) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize(
    "change",
    [{"petal_width": -1}, {"petal_width": 99}, {"petal_width": float("nan")}, {"colour": "blue"}],
)
def test_flower_rejects_impossible_measurements(saved_model, change):
    from service import EXAMPLE_INPUT, Flower

    with pytest.raises(ValidationError):
        Flower(**{**EXAMPLE_INPUT.model_dump(), **change})
