"""Model signing with a local key pair: signed models load, anything else is refused.

The manifest alone (tests/test_artifact.py) catches a changed file; only the signature
catches someone who changed a file and rewrote every hash to match.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import bentoml
import pytest
import yaml

import artifact
import signing
from servers import (
    EXAMPLE_DIR,
    START_DEADLINE_S,
    assert_batch_matches_in_process,
    free_port,
    serve,
    stop,
    wait_until_ready,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(private key, public key) made by `signing.keygen`."""
    return signing.keygen(tmp_path_factory.mktemp("keys"))


def copy_of_store(tmp_path: Path) -> Path:
    """A private copy of the test model store (BENTOML_HOME) to sign or tamper with."""
    home = tmp_path / "bentoml"
    shutil.copytree(os.environ["BENTOML_HOME"], home,
                    ignore=shutil.ignore_patterns("prometheus_multiproc_dir"))
    return home


def model_dir(home: Path, tag: bentoml.Tag) -> Path:
    return home / "models" / tag.name / tag.version


def forge(folder: Path, threshold: float) -> None:
    """What a careful attacker does: change the decision threshold in the model's metadata,
    then rewrite manifest.json so every hash matches again."""
    info = folder / "model.yaml"
    metadata = yaml.safe_load(info.read_text())
    metadata["metadata"]["decision_threshold"] = threshold
    info.write_text(yaml.safe_dump(metadata, sort_keys=False))
    manifest = json.loads((folder / artifact.MANIFEST).read_text())
    manifest["model.yaml"] = artifact.sha256_of(info)
    (folder / artifact.MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture
def signed(trained, keys, tmp_path):
    """(folder, sha256 recorded at training) of a signed copy of the trained model."""
    stored, _ = trained
    folder = tmp_path / "model"
    shutil.copytree(bentoml.models.get(stored.tag).path, folder)
    started = time.perf_counter()
    artifact.seal(folder, keys[0])
    print(f"signing {folder}: {time.perf_counter() - started:.3f} s")
    return folder, stored.info.metadata["artifact"]["sha256"]


def test_keygen_writes_a_private_key_only_its_owner_can_read(keys):
    private_key, public_key = keys
    assert private_key.stat().st_mode & 0o777 == 0o600
    assert public_key.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(FileExistsError):  # never overwrites a key
        signing.keygen(private_key.parent)


def test_a_signed_model_loads_with_its_public_key(signed, keys):
    folder, sha256 = signed
    assert (folder / artifact.SIGNATURE).is_file()
    started = time.perf_counter()
    model = artifact.load_verified(folder, sha256, public_key=keys[1])
    print(f"verifying and loading {folder}: {time.perf_counter() - started:.3f} s")
    assert hasattr(model, "predict_proba")


def test_another_key_is_refused(signed, tmp_path):
    folder, sha256 = signed
    _, stranger = signing.keygen(tmp_path / "stranger")
    with pytest.raises(artifact.ArtifactError, match="fails its signature.*Key mismatch"):
        artifact.load_verified(folder, sha256, public_key=stranger)


def test_a_configured_key_refuses_an_unsigned_model(signed, keys, monkeypatch):
    folder, sha256 = signed
    (folder / artifact.SIGNATURE).unlink()
    artifact.load_verified(folder, sha256)  # no key configured: the manifest is all we check
    monkeypatch.setenv(artifact.PUBLIC_KEY_ENV, str(keys[1]))
    with pytest.raises(artifact.ArtifactError, match="has no signature"):
        artifact.load_verified(folder, sha256)


def test_a_corrupt_signature_is_refused(signed, keys):
    folder, sha256 = signed
    (folder / artifact.SIGNATURE).write_text("{}")
    with pytest.raises(artifact.ArtifactError, match="fails its signature"):
        artifact.load_verified(folder, sha256, public_key=keys[1])


def test_rewritten_hashes_pass_the_manifest_but_not_the_signature(signed, keys):
    folder, sha256 = signed
    forge(folder, threshold=0.99)  # would approve nearly everyone
    artifact.load_verified(folder, sha256)  # the manifest alone is fooled
    with pytest.raises(artifact.ArtifactError,
                       match="changed since signing: manifest.json, model.yaml"):
        artifact.load_verified(folder, sha256, public_key=keys[1])


@pytest.mark.timeout(240)
def test_training_signs_and_the_command_verifies(keys, tmp_path):
    """`python train.py` with CREDIT_RISK_SIGNING_KEY signs; `signing.py verify` checks."""
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"),
           artifact.SIGNING_KEY_ENV: str(keys[0])}

    def run(*command):
        return subprocess.run([sys.executable, *command], cwd=EXAMPLE_DIR, env=env,
                              capture_output=True, text=True, timeout=180)

    trained = run("train.py", "--rows", "4000", "--metrics", str(tmp_path / "metrics.json"))
    assert trained.returncode == 0, trained.stderr
    verify = ["signing.py", "verify", "credit_risk:latest", "--public-key", str(keys[1])]
    checked = run(*verify)
    assert checked.returncode == 0, checked.stderr
    assert " ok in " in checked.stdout
    print(checked.stdout)

    [folder] = (tmp_path / "bentoml" / "models" / "credit_risk").glob("*/")
    assert sorted(p.name for p in folder.iterdir()) == [
        artifact.MANIFEST, artifact.SIGNATURE, artifact.ARTIFACT, "model.yaml"]
    forge(folder, threshold=0.99)
    refused = run(*verify)
    assert refused.returncode != 0
    assert "changed since signing: manifest.json, model.yaml" in refused.stderr


# Verifying imports model-signing and, through it, sigstore: about 3 s on an idle machine, in
# both processes that import the service (the `bentoml serve` command and its worker).
SIGNED_START_DEADLINE_S = 2 * START_DEADLINE_S


@pytest.mark.timeout(300)
def test_the_server_verifies_a_signed_model_and_serves_it(trained, keys, tmp_path, service):
    stored, _ = trained
    home = copy_of_store(tmp_path)
    artifact.seal(model_dir(home, stored.tag), keys[0])
    port, log = free_port(), tmp_path / "serve.log"
    process = serve(port, log, BENTOML_HOME=str(home), CREDIT_RISK_MODEL=str(stored.tag),
                    **{artifact.PUBLIC_KEY_ENV: str(keys[1])})
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, SIGNED_START_DEADLINE_S)
        assert_batch_matches_in_process(f"http://127.0.0.1:{port}", service,
                                        [service.EXAMPLE_INPUT])
    except BaseException:
        print(log.read_text()[-5000:])
        raise
    finally:
        stop(process)


@pytest.mark.timeout(300)
def test_a_forged_model_stops_the_server_at_start(trained, keys, tmp_path):
    stored, _ = trained
    home = copy_of_store(tmp_path)
    folder = model_dir(home, stored.tag)
    artifact.seal(folder, keys[0])
    forge(folder, threshold=0.99)

    log = tmp_path / "serve.log"
    process = serve(free_port(), log, BENTOML_HOME=str(home), CREDIT_RISK_MODEL=str(stored.tag),
                    **{artifact.PUBLIC_KEY_ENV: str(keys[1])})
    try:
        process.wait(timeout=SIGNED_START_DEADLINE_S)
    finally:
        stop(process)
    output = log.read_text()
    assert process.returncode != 0
    assert f"model directory {folder} fails its signature" in output
    assert "changed since signing: manifest.json, model.yaml" in output
