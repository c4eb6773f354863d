"""Save and load the model file safely: skops instead of pickle, checked against its sha256.

A pickle runs whatever code it contains when loaded. skops stores the same sklearn objects
as data and refuses, at load time, any type that is not on an explicit trusted list. The
sha256 recorded at training time catches a file that changed after it was written.
"""

import hashlib
from pathlib import Path

import skops.io

ARTIFACT = "model.skops"
# Types skops does not trust by default that this pipeline needs; anything else is refused.
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


class ArtifactError(RuntimeError):
    """The model file is missing, changed since training, or holds untrusted types."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dump(model, folder: Path) -> str:
    """Write the model to folder/model.skops and return the file's sha256."""
    path = Path(folder) / ARTIFACT
    skops.io.dump(model, path)
    return sha256_of(path)


def load_verified(folder: Path, expected_sha256: str):
    """Load folder/model.skops after checking its hash and the types it contains."""
    path = Path(folder) / ARTIFACT
    if not path.is_file():
        raise ArtifactError(f"model artifact {path} is missing")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ArtifactError(
            f"model artifact {path} has sha256 {actual} but training recorded "
            f"{expected_sha256}: the file changed since it was written; refusing to load it"
        )
    try:
        untrusted = set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    except Exception as error:  # a corrupt archive fails inside skops with various errors
        raise ArtifactError(f"model artifact {path} cannot be read: {error}") from error
    if untrusted:
        raise ArtifactError(f"model artifact {path} contains untrusted types: {sorted(untrusted)}")
    return skops.io.load(path, trusted=TRUSTED_TYPES)
