"""The container: the bento built into an OCI image with podman, started, and called.

Needs podman, runc and debootstrap (Debian packages) and root to build the base image. Outside
CI a missing tool skips these tests with the reason; with CI=true it fails them. The image is
the one the release process builds for this model (ops/release/build.py): keyed by its
content, so a second run builds nothing.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import bentoml
import pytest
from conftest import require
from servers import assert_batch_matches_in_process

from credit_risk.schema import EXAMPLE_INPUT
from ops import podman
from ops.processes import EXAMPLE_DIR
from ops.release.build import build

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def release(trained):
    for tool in ["podman", "runc"]:
        require(shutil.which(tool) is not None, f"{tool} is not installed (apt-get install {tool})")
    if podman.image_id(podman.LOCAL_BASE_IMAGE) is None:
        require(os.geteuid() == 0 and shutil.which("debootstrap") is not None,
                f"building {podman.LOCAL_BASE_IMAGE} needs root and debootstrap")
    stored, _ = trained
    built, _ = build(str(stored.tag))
    return built


@pytest.fixture
def container_url(release, tmp_path):
    # The keys file reaches the container as a read-only volume, the way a Kubernetes Secret
    # does (deploy/k8s). It holds only hashes; the image's user (uid 1034) must read it.
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o755)
    keys_file = Path(os.environ["CREDIT_RISK_STATE_DIR"]) / "api-keys.jsonl"
    shutil.copy(keys_file, secrets / "api-keys.jsonl")
    (secrets / "api-keys.jsonl").chmod(0o644)
    container = podman.run(
        release.image, "test", deadline_s=120,
        env={"CREDIT_RISK_API_KEYS_FILE": "/run/secrets/credit-risk/api-keys.jsonl"},
        volumes={secrets: "/run/secrets/credit-risk"})
    try:
        yield container.url
    finally:
        container.remove()


def test_container_answers_like_the_model_in_process(container_url, release):
    applications = [EXAMPLE_INPUT, EXAMPLE_INPUT.model_copy(update={"previous_defaults": 3})]
    assert_batch_matches_in_process(container_url, release.model, applications)


def test_bento_packages_the_served_model_and_pinned_requirements(release):
    folder = Path(bentoml.bentos.get(release.bento).path)
    assert f"tag: {release.model}" in (folder / "bento.yaml").read_text()
    installed = (folder / "env" / "python" / "requirements.txt").read_text()
    pinned = [line for line in (EXAMPLE_DIR / "requirements.txt").read_text().splitlines()
              if line and not line.lstrip().startswith("#")]
    assert all(line in installed for line in pinned)
    shipped = {p.relative_to(folder / "src").parts[0] for p in (folder / "src").rglob("*.py")}
    assert shipped == {"service.py", "credit_risk"}, "training and ops code stay out"


def test_generated_dockerfile_passes_hadolint(release):
    folder = Path(bentoml.bentos.get(release.bento).path)
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([hadolint, "--config", EXAMPLE_DIR / ".hadolint.yaml",
                             folder / "env" / "docker" / "Dockerfile"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
