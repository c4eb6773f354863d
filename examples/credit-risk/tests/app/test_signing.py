"""Model signing with a local key pair: signed models load, anything else is refused.

The manifest alone (tests/test_artifact.py) catches a changed file; only the signature
catches someone who changed a file and rewrote every hash to match.
"""

import shutil
import time

import bentoml
import pytest
from checks import forge

from credit_risk import artifact
from ops import signing


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """(private key, public key) made by `signing.keygen`."""
    return signing.keygen(tmp_path_factory.mktemp("keys"))


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


def test_a_configured_key_refuses_an_unsigned_model(signed, keys):
    folder, sha256 = signed
    (folder / artifact.SIGNATURE).unlink()
    artifact.load_verified(folder, sha256)  # no key configured: the manifest is all we check
    with pytest.raises(artifact.ArtifactError, match="has no signature"):
        artifact.load_verified(folder, sha256, public_key=keys[1])


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
