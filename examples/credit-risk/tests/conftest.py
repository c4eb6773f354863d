"""Shared fixtures: an isolated model store holding one freshly trained model."""

import os
import tempfile

# Point BentoML at a throwaway store before anything imports it, so tests never
# touch (or depend on) the models in your own ~/bentoml.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-test-")

import importlib  # noqa: E402

import pytest  # noqa: E402

import train  # noqa: E402


@pytest.fixture(scope="session")
def trained():
    """(stored model, metrics) for the default training run, saved to the isolated store."""
    return train.run()


@pytest.fixture(scope="session")
def service(trained):
    """The service module, imported after training (it loads the latest model at import)."""
    return importlib.import_module("service")
