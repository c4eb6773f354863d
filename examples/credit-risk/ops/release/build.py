"""Stage 3, build: the candidate's bento and container image, keyed by their inputs, so the
same inputs build nothing."""

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import bentoml
import yaml

from ops import podman
from ops.processes import EXAMPLE_DIR


@dataclass(frozen=True)
class Release:
    model: str   # credit_risk:<version>
    bento: str   # credit_risk_service:<build key>
    image: str   # localhost/credit_risk_service:<build key>

    @property
    def version(self) -> str:
        return self.model.split(":", 1)[1]


# --8<-- [start:build-key]
def build_key(model: str, source: Path, base_image_id: str) -> str:
    """A digest of everything the image is made of: the model, every file the bentofile
    includes (code, requirements.txt) and the base image. Same key, same image."""
    bentofile = source / "bentofile.yaml"
    digest = hashlib.sha256(f"{model}\n{base_image_id}\n".encode())
    digest.update(bentofile.read_bytes())
    for name in sorted(yaml.safe_load(bentofile.read_text())["include"]):
        for path in sorted(source.glob(name)):
            digest.update(f"{path.relative_to(source)}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:20]


def build(model: str, source: Path = EXAMPLE_DIR) -> tuple[Release, dict]:
    """The bento and the image serving `model`, built only if their key is new."""
    base_image_id = podman.ensure_base_image()  # once per machine; needs root and debootstrap
    key = build_key(model, source, base_image_id)
    release = Release(model, f"credit_risk_service:{key}",
                      f"localhost/credit_risk_service:{key}")
    built = {"bento": False, "image": False, "key": key}
    try:
        bentoml.bentos.get(release.bento)
    except bentoml.exceptions.NotFound:
        podman.sh(sys.executable, "-m", "bentoml", "build", "--version", key, cwd=source,
                  CREDIT_RISK_MODEL=model, BENTO_BASE_IMAGE=podman.LOCAL_BASE_IMAGE)
        built["bento"] = True
    if podman.image_id(release.image) is None:
        podman.containerize(release.bento, release.image)
        built["image"] = True
    return release, built
# --8<-- [end:build-key]
