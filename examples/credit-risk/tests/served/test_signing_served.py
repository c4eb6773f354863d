"""A real server verifies the model's signature at start: a signed model is served, a forged
one stops it with the reason."""

import bentoml
import pytest
from checks import forge
from servers import assert_batch_matches_in_process, failed_start, served

from credit_risk import artifact
from credit_risk.schema import EXAMPLE_INPUT
from ops import signing


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(private key, public key) made by `signing.keygen`."""
    return signing.keygen(tmp_path_factory.mktemp("keys"))


def model_dir(home, tag: bentoml.Tag):
    return home / "models" / tag.name / tag.version


# Verifying imports model-signing and, through it, sigstore: about 3 s on an idle machine, in
# both processes that import the service (the `bentoml serve` command and its worker).
SIGNED_START_DEADLINE_S = 120


@pytest.mark.timeout(300)
def test_the_server_verifies_a_signed_model_and_serves_it(trained, keys, model_home):
    stored, _ = trained
    artifact.seal(model_dir(model_home, stored.tag), keys[0])
    with served(deadline_s=SIGNED_START_DEADLINE_S, BENTOML_HOME=str(model_home),
                CREDIT_RISK_SIGNING_PUBLIC_KEY=str(keys[1])) as url:
        assert_batch_matches_in_process(url, str(stored.tag), [EXAMPLE_INPUT])


@pytest.mark.timeout(300)
def test_a_forged_model_stops_the_server_at_start(trained, keys, model_home, tmp_path):
    stored, _ = trained
    folder = model_dir(model_home, stored.tag)
    artifact.seal(folder, keys[0])
    forge(folder, threshold=0.99)
    returncode, output = failed_start(tmp_path / "serve.log",
                                      deadline_s=SIGNED_START_DEADLINE_S,
                                      BENTOML_HOME=str(model_home),
                                      CREDIT_RISK_SIGNING_PUBLIC_KEY=str(keys[1]))
    assert returncode != 0
    assert f"model directory {folder} fails its signature" in output
    assert "changed since signing: manifest.json, model.yaml" in output
