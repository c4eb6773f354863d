"""Model signing with a local key pair: signed models load, anything else is refused; the
key rotates without a model that fails to load.

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


# --- rotating the signing key ---------------------------------------------------------------

def test_during_a_rotation_either_public_key_loads_the_model_and_after_it_only_the_new(
        signed, keys, tmp_path):
    folder, sha256 = signed
    new_public = signing.rotate([folder], keys[1], tmp_path / "next")
    artifact.check_manifest(folder)  # model.next.sig is no file the manifest must list
    for public_key in [keys[1], new_public]:  # a restart with either key succeeds
        artifact.load_verified(folder, sha256, public_key=public_key)
    signing.retire([folder], new_public)
    assert not (folder / artifact.NEXT_SIGNATURE).exists()
    artifact.load_verified(folder, sha256, public_key=new_public)
    with pytest.raises(artifact.ArtifactError, match="Key mismatch"):
        artifact.load_verified(folder, sha256, public_key=keys[1])


def test_a_model_signed_only_by_a_retired_key_is_refused_in_one_line_naming_file_and_key(
        signed, keys, tmp_path):
    folder, sha256 = signed
    _, new_public = signing.keygen(tmp_path / "next")  # a rotation that left this model out
    with pytest.raises(artifact.ArtifactError) as refused:
        artifact.load_verified(folder, sha256, public_key=new_public)
    message = str(refused.value)
    assert "\n" not in message
    assert f"checked with {new_public}: {folder / artifact.SIGNATURE}: Key mismatch" in message


def test_rotation_refuses_to_sign_a_model_the_old_key_does_not_vouch_for(signed, keys, tmp_path):
    folder, _ = signed
    forge(folder, threshold=0.99)
    with pytest.raises(artifact.ArtifactError, match="changed since signing"):
        signing.rotate([folder], keys[1], tmp_path / "next")
    assert not (folder / artifact.NEXT_SIGNATURE).exists()
    with pytest.raises(ValueError, match="is the current public key"):
        signing.rotate([folder], keys[1], keys[1].parent)


def test_the_rotate_and_retire_commands(signed, keys, tmp_path, monkeypatch, capsys):
    folder, sha256 = signed
    monkeypatch.setattr(signing, "model_folder", {"credit_risk:v1": folder}.get)
    new_public = tmp_path / "next" / "model-signing.pub"

    def command(*args) -> tuple[int, str, str]:
        code = signing.main([*args, "--model", "credit_risk:v1"])
        return code, *capsys.readouterr()

    code, _, error = command("retire", "--public-key", str(keys[1]))
    assert code == 1 and error == f"error: {folder / artifact.NEXT_SIGNATURE} is missing: " \
                                  f"run `rotate` for this model first\n"
    code, output, _ = command("rotate", "--public-key", str(keys[1]),
                              "--keys-dir", str(tmp_path / "next"))
    assert code == 0 and f"CREDIT_RISK_SIGNING_PUBLIC_KEY={new_public}" in output
    assert command("retire", "--public-key", str(new_public))[0] == 0
    artifact.verify_signature(folder, new_public, names=(artifact.SIGNATURE,))
