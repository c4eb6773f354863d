"""The model file: loaded only when its hash matches and it holds trusted types only."""

import pickle
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator

import artifact


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
