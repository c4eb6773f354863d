"""Shared fixtures: an isolated model store holding one freshly trained model."""

import os
import tempfile

# Point BentoML at a throwaway store before anything imports it, so tests never
# touch (or depend on) the models in your own ~/bentoml.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-test-")

import pytest  # noqa: E402

import train  # noqa: E402


@pytest.fixture(scope="session")
def saved_model():
    """Train once per test session and save to the isolated store."""
    model, accuracy = train.train()
    return train.save(model, accuracy)
