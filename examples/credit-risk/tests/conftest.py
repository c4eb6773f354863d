"""Shared fixtures, and the tier of each test from its folder.

- unit/     no model, no server, no port                      (seconds)
- app/      the service in this process, one trained model    (seconds)
- retrain/  checks that train models again (ablation, tuning, baselines)
- served/   real `bentoml serve` processes on loopback ports
- system/   system tools (podman, nginx, prometheus, ray) or root

`pytest -m "unit or app"` is the fast loop; plain `pytest` runs every tier.
"""

import os
import shutil
import tempfile
from pathlib import Path

# Point BentoML at a throwaway store and the service's state at a throwaway folder before
# anything imports them, so tests never touch (or depend on) your own models and logs.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-test-")
STATE = Path(tempfile.mkdtemp(prefix="credit-risk-state-test-"))
os.environ["CREDIT_RISK_STATE_DIR"] = str(STATE)
# Settings from a developer's shell must not change what the tests see; tests that need a
# setting pass it to the server they start.
for name in list(os.environ):
    if name.startswith("CREDIT_RISK_") and name != "CREDIT_RISK_STATE_DIR":
        del os.environ[name]
# The tests are one client sending thousands of requests, so its rate limit is generous;
# the security tests check the limit with settings of their own.
os.environ["CREDIT_RISK_RATE_LIMIT_PER_S"] = "1000"
os.environ["CREDIT_RISK_RATE_BURST"] = "1000"

import pytest  # noqa: E402

from credit_risk import api_keys  # noqa: E402
from credit_risk.settings import Settings  # noqa: E402

TIERS = ("unit", "app", "retrain", "served", "system")
# A key with the score scope in the keys file every server the tests start reads
# (locustfile.py sends CREDIT_RISK_API_KEY too).
os.environ["CREDIT_RISK_API_KEY"] = api_keys.new(Settings.from_env().keys_file, "tests",
                                                 ["score"])


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def trained():
    """(stored model, metrics) for the default training run, saved to the isolated store.

    Its tag is pinned for the service and every server the tests start: other tests (the
    release process's) store newer versions, and `latest` would then name one of those.
    """
    import train

    stored, metrics = train.run()
    os.environ["CREDIT_RISK_MODEL"] = str(stored.tag)
    return stored, metrics


@pytest.fixture(scope="session")
def two_versions(trained):
    """(v1, v2) tags: v1 is the default training run, v2 is trained on another snapshot."""
    import train

    v2, _ = train.run(seed=7, rows=30_000)
    return str(trained[0].tag), str(v2.tag)


@pytest.fixture(scope="session")
def service(trained):
    """The service module, imported after training (it loads the pinned model at import)."""
    import service

    return service


@pytest.fixture(scope="session")
def client(service):
    """The service's ASGI app in this process, behind Starlette's TestClient, sending the
    tests' API key with every request.

    One per session: each app registers BentoML's request metrics, which may exist once.
    """
    from servers import AUTH
    from starlette.testclient import TestClient

    with TestClient(service.CreditRisk.to_asgi(), headers=AUTH) as client:
        yield client


@pytest.fixture(scope="session")
def server_url(trained):
    """One `bentoml serve` for the session, shared by the tests that only call it."""
    from servers import served

    with served() as url:
        yield url


@pytest.fixture
def model_home(trained, tmp_path) -> Path:
    """A BENTOML_HOME holding a copy of the trained model alone (not the whole store), for a
    test that alters it."""
    stored, _ = trained
    home = tmp_path / "bentoml"
    target = home / "models" / stored.tag.name / stored.tag.version
    shutil.copytree(stored.path, target)
    (target.parent / "latest").write_text(stored.tag.version)
    return home


def require(condition: bool, reason: str) -> None:
    """Skip with the reason outside CI; under CI=true a missing tool is a failure."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
