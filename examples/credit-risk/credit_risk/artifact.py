"""Save and load the model safely: skops instead of pickle, a manifest, and a signature.

A pickle runs whatever code it contains when loaded. skops stores the same sklearn objects
as data and refuses, at load time, any type that is not on an explicit trusted list.

Three integrity records sit beside the model file, each catching more than the one before:

- its sha256 in the model's metadata (model.yaml) catches a file that changed by accident;
- manifest.json, the sha256 of every file in the model directory, catches a change to any of
  them (the metadata, with the decision threshold, included);
- model.sig, a signature over the whole directory made with a private key (training's
  `signing_key` setting), catches someone who changed a file *and* rewrote the hashes: only
  the key's owner can make a signature that the public key (the service's
  `signing_public_key` setting) accepts.

While the signing key is rotated (`python -m ops.signing rotate`), model.next.sig holds a
second signature, by the next key, beside model.sig: a service checking with either public
key finds its signature, so no restart fails whichever key it was started with.
"""

import hashlib
import json
import re
from pathlib import Path

import skops.io

ARTIFACT = "model.skops"
MANIFEST = "manifest.json"
SIGNATURE = "model.sig"
NEXT_SIGNATURE = "model.next.sig"  # by the next key, during a key rotation
SIGNATURES = (SIGNATURE, NEXT_SIGNATURE)  # not covered by the manifest nor by a signature
# Types skops does not trust by default that this pipeline needs; anything else is refused.
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


class ArtifactError(RuntimeError):
    """The model file is missing, changed since training, unsigned or holds untrusted types."""


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


def _check_sha256(path: Path, expected: str, recorded_by: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ArtifactError(
            f"model artifact {path} has sha256 {actual} but {recorded_by} recorded "
            f"{expected}: the file changed since it was written; refusing to load it"
        )


# --8<-- [start:seal]
def seal(folder: Path, private_key: Path | None = None) -> None:
    """Write the manifest of a finished model directory and, given a key, sign it.

    Call it once every file is written (BentoML writes model.yaml last). Without a private
    key the model is stored unsigned.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.name not in (MANIFEST, *SIGNATURES))
    manifest = {str(p.relative_to(folder)): sha256_of(p) for p in files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if private_key:
        sign(folder, private_key, SIGNATURE)


def sign(folder: Path, private_key: Path, name: str) -> None:
    """Write folder/name, a signature of the directory made with `private_key`."""
    from model_signing import hashing, signing  # imported only where models are signed

    # Every file is covered, manifest.json included; only the signatures themselves are not.
    signing.Config().use_elliptic_key_signer(private_key=private_key).set_hashing_config(
        hashing.Config().set_ignored_paths(paths=list(SIGNATURES))
    ).sign(folder, Path(folder) / name)
# --8<-- [end:seal]


def check_manifest(folder: Path) -> None:
    """Every file listed in manifest.json must be there with its sha256, and no other."""
    folder = Path(folder)
    listed = json.loads((folder / MANIFEST).read_text())
    for name, expected in listed.items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"model file {path}, listed in {folder / MANIFEST}, is missing")
        _check_sha256(path, expected, MANIFEST)
    extra = sorted(str(p) for p in folder.rglob("*") if p.is_file()
                   and p.name not in (MANIFEST, *SIGNATURES) and str(p.relative_to(folder))
                   not in listed)
    if extra:
        raise ArtifactError(f"model directory {folder} holds files its manifest does not "
                            f"list: {extra}; refusing to load it")


# --8<-- [start:verify-signature]
def verify_signature(folder: Path, public_key: Path, names=SIGNATURES) -> None:
    """Raise ArtifactError unless one of the signature files `names` in folder is a valid
    signature of this directory made with the private key paired with `public_key`
    (offline: no network involved)."""
    folder = Path(folder)
    signatures = [folder / name for name in names if (folder / name).is_file()]
    if not signatures:
        raise ArtifactError(f"model directory {folder} has no signature {folder / names[0]}, "
                            f"and a public key was configured to check it; refusing to load it")
    from model_signing import hashing, verifying  # imported only where a key asks for it

    failures = []
    for signature in signatures:  # a fresh verifier each: verifying changes its config
        try:
            return verifying.Config().use_elliptic_key_verifier(
                public_key=public_key).set_hashing_config(
                hashing.Config().set_ignored_paths(paths=list(SIGNATURES))
            ).verify(folder, signature)
        except Exception as error:  # wrong key, forged or corrupt signature, changed files
            failures.append(f"{signature}: {_summary(error)}")
    raise ArtifactError(f"model directory {folder} fails its signature checked with "
                        f"{public_key}: {'; '.join(failures)}; refusing to load it")
# --8<-- [end:verify-signature]


def _summary(error: Exception) -> str:
    """model-signing's mismatch report, with file names instead of raw digests."""
    text = str(error).replace("\\'", "'")  # it reports the repr of a list of strings
    if text.startswith("Key mismatch"):
        return "Key mismatch: made with another key"
    parts = []
    if changed := sorted(set(re.findall(r"Hash mismatch for '([^']+)'", text))):
        parts.append(f"changed since signing: {', '.join(changed)}")
    for kind, label in [("Extra files found in", "not signed"), ("Missing files in", "missing")]:
        if found := re.search(kind + r" model '[^']*': ([^\"'\]]+)", text):
            parts.append(f"{label}: {found.group(1)}")
    return "; ".join(parts) or text


def load_verified(folder: Path, expected_sha256: str, public_key: Path | None = None):
    """Load folder/model.skops after checking its hashes, its signature and its types.

    The signature is checked when a public key is given; then a missing or bad signature
    refuses the model.
    """
    folder = Path(folder)
    path = folder / ARTIFACT
    if not path.is_file():
        raise ArtifactError(f"model artifact {path} is missing")
    if (folder / MANIFEST).is_file():  # models stored before manifests existed have none
        check_manifest(folder)
    _check_sha256(path, expected_sha256, "training")
    if public_key:
        verify_signature(folder, Path(public_key))
    try:
        untrusted = set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    except Exception as error:  # a corrupt archive fails inside skops with various errors
        raise ArtifactError(f"model artifact {path} cannot be read: {error}") from error
    if untrusted:
        raise ArtifactError(f"model artifact {path} contains untrusted types: {sorted(untrusted)}")
    return skops.io.load(path, trusted=TRUSTED_TYPES)
