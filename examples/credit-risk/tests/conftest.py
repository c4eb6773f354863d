"""Shared fixtures: an isolated model store holding one freshly trained model."""

import os
import tempfile

# Point BentoML at a throwaway store (and the prediction log at a throwaway folder) before
# anything imports them, so tests never touch (or depend on) your own models and logs.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-test-")
os.environ["CREDIT_RISK_PREDICTION_LOG_DIR"] = tempfile.mkdtemp(prefix="predictions-test-")
# The service refuses to start without API keys: a throwaway keys file with one key for the
# tests, in the environment every server the tests start inherits (CREDIT_RISK_API_KEY is
# what locustfile.py sends). The tests are one client sending thousands of requests, so its
# rate limit is generous; test_security.py checks the limit with settings of its own.
os.environ["CREDIT_RISK_API_KEYS_FILE"] = os.path.join(tempfile.mkdtemp(prefix="keys-test-"),
                                                       "api-keys.jsonl")
os.environ["CREDIT_RISK_RATE_LIMIT_PER_S"] = "1000"
os.environ["CREDIT_RISK_RATE_BURST"] = "1000"
# Settings from a developer's shell must not change what the tests see; test_signing.py
# sets its own signing keys.
for name in ("CREDIT_RISK_ALLOW_ANONYMOUS", "CREDIT_RISK_SIGNING_KEY",
             "CREDIT_RISK_SIGNING_PUBLIC_KEY", "CREDIT_RISK_MODEL"):
    os.environ.pop(name, None)

import importlib  # noqa: E402

import pytest  # noqa: E402

import keys  # noqa: E402
import train  # noqa: E402

os.environ["CREDIT_RISK_API_KEY"] = keys.new(keys.keys_file(), "tests", ["score"])


@pytest.fixture(scope="session")
def trained():
    """(stored model, metrics) for the default training run, saved to the isolated store.

    Its tag is pinned for the `service` module and every server the tests start: other tests
    (the release pipeline's) store newer versions, and `latest` would then name one of those.
    """
    stored, metrics = train.run()
    os.environ["CREDIT_RISK_MODEL"] = str(stored.tag)
    return stored, metrics


@pytest.fixture(scope="session")
def client(service):
    """The service's ASGI app in this process, behind Starlette's TestClient, sending the
    tests' API key with every request.

    One per session: each app registers BentoML's request metrics, which may exist once.
    """
    from starlette.testclient import TestClient

    from servers import AUTH

    with TestClient(service.CreditRisk.to_asgi(), headers=AUTH) as client:
        yield client


@pytest.fixture(scope="session")
def service(trained):
    """The service module, imported after training (it loads the pinned model at import)."""
    return importlib.import_module("service")
