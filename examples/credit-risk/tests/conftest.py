"""Shared fixtures: an isolated model store holding one freshly trained model."""

import os
import tempfile

# Point BentoML at a throwaway store (and the prediction log at a throwaway folder) before
# anything imports them, so tests never touch (or depend on) your own models and logs.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-test-")
os.environ["CREDIT_RISK_PREDICTION_LOG_DIR"] = tempfile.mkdtemp(prefix="predictions-test-")

import importlib  # noqa: E402

import pytest  # noqa: E402

import train  # noqa: E402


@pytest.fixture(scope="session")
def trained():
    """(stored model, metrics) for the default training run, saved to the isolated store."""
    return train.run()


@pytest.fixture(scope="session")
def client(service):
    """The service's ASGI app in this process, behind Starlette's TestClient.

    One per session: each app registers BentoML's request metrics, which may exist once.
    """
    from starlette.testclient import TestClient

    with TestClient(service.CreditRisk.to_asgi()) as client:
        yield client


@pytest.fixture(scope="session")
def service(trained):
    """The service module, imported after training (it loads the latest model at import)."""
    return importlib.import_module("service")
