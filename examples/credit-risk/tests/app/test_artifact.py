"""The model file: loaded only when its hashes match and it holds trusted types only."""

import json
import pickle
import shutil
from pathlib import Path

import bentoml
import pytest
from sklearn.base import BaseEstimator

from credit_risk import artifact


class NotOnTheTrustedList(BaseEstimator):
    pass


def test_the_stored_artifact_loads(trained):
    stored, _ = trained
    model = artifact.load_verified(stored.path, stored.info.metadata["artifact"]["sha256"])
    assert hasattr(model, "predict_proba")


def test_a_flipped_byte_is_refused_with_the_file_named(trained, tmp_path):
    stored, _ = trained
    target = tmp_path / artifact.ARTIFACT
    content = bytearray((Path(stored.path) / artifact.ARTIFACT).read_bytes())
    content[len(content) // 2] ^= 0xFF
    target.write_bytes(content)
    with pytest.raises(artifact.ArtifactError, match=str(target)):
        artifact.load_verified(tmp_path, stored.info.metadata["artifact"]["sha256"])


def test_a_missing_file_is_refused_with_the_file_named(tmp_path):
    with pytest.raises(artifact.ArtifactError, match=f"{tmp_path / artifact.ARTIFACT} is missing"):
        artifact.load_verified(tmp_path, "0" * 64)


def test_untrusted_types_are_refused(tmp_path):
    sha256 = artifact.dump(NotOnTheTrustedList(), tmp_path)
    with pytest.raises(artifact.ArtifactError, match="untrusted types.*NotOnTheTrustedList"):
        artifact.load_verified(tmp_path, sha256)


def test_a_pickle_is_not_loaded(tmp_path):
    path = tmp_path / artifact.ARTIFACT
    path.write_bytes(pickle.dumps({"not": "a skops file"}))
    with pytest.raises(artifact.ArtifactError, match="cannot be read"):
        artifact.load_verified(tmp_path, artifact.sha256_of(path))


def test_the_stored_model_has_a_manifest_of_every_file(trained):
    stored, _ = trained
    folder = Path(bentoml.models.get(stored.tag).path)
    manifest = json.loads((folder / artifact.MANIFEST).read_text())
    files = sorted(p.name for p in folder.iterdir() if p.name != artifact.MANIFEST)
    assert {artifact.ARTIFACT, "model.yaml"} <= set(files)
    assert manifest == {name: artifact.sha256_of(folder / name) for name in files}
    artifact.check_manifest(folder)


@pytest.fixture
def stored_copy(trained, tmp_path):
    """(folder, sha256 recorded at training) of a copy of the stored model's directory."""
    stored, _ = trained
    folder = tmp_path / "model"
    shutil.copytree(bentoml.models.get(stored.tag).path, folder)
    return folder, stored.info.metadata["artifact"]["sha256"]


def test_changed_metadata_is_refused_with_the_file_named(stored_copy):
    folder, sha256 = stored_copy
    info = folder / "model.yaml"
    info.write_text(info.read_text().replace("decision_threshold: 0.5",
                                             "decision_threshold: 0.99"))
    with pytest.raises(artifact.ArtifactError,
                       match=f"model artifact {info} has sha256 .* but manifest.json recorded"):
        artifact.load_verified(folder, sha256)


def test_files_the_manifest_does_not_list_are_refused(stored_copy):
    folder, sha256 = stored_copy
    (folder / "extra.pkl").write_bytes(pickle.dumps("smuggled in"))
    with pytest.raises(artifact.ArtifactError, match="does not list.*extra.pkl"):
        artifact.load_verified(folder, sha256)
