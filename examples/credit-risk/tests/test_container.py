"""The container: the bento built into an OCI image with podman, started, and called.

Needs podman, runc and debootstrap (Debian packages) and root to build the base image. Outside
CI a missing tool skips these tests with the reason; with CI=true it fails them.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import bentoml
import httpx
import pytest

from servers import EXAMPLE_DIR, assert_batch_matches_in_process, free_port

pytestmark = pytest.mark.timeout(900)
BASE_IMAGE = "localhost/handbook/python:3.11-bookworm"
IMAGE_TAG = "localhost/credit_risk_service:test"  # one tag, replaced on every run
CONTAINER_DIR = EXAMPLE_DIR / "deploy" / "container"
BENTOML = [sys.executable, "-m", "bentoml"]


def require(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def run(command, **env):
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this venv's bentoml
    result = subprocess.run([str(part) for part in command], cwd=EXAMPLE_DIR, text=True,
                            capture_output=True, env={**os.environ, "PATH": path, **env},
                            timeout=600)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, f"{command} failed:\n{output}"
    return result.stdout


@pytest.fixture(scope="module")
def bento(trained):
    """Build the bento against the local base image; return (tag, folder)."""
    run([*BENTOML, "build"], BENTO_BASE_IMAGE=BASE_IMAGE)
    built = max(bentoml.bentos.list("credit_risk_service"), key=lambda b: b.info.creation_time)
    return str(built.tag), Path(built.path)


@pytest.fixture(scope="module")
def image(bento):
    for tool in ["podman", "runc"]:
        require(shutil.which(tool) is not None, f"{tool} is not installed (apt-get install {tool})")
    has_base = subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode == 0
    if not has_base:
        require(os.geteuid() == 0 and shutil.which("debootstrap") is not None,
                f"building {BASE_IMAGE} needs root and debootstrap")
        run([CONTAINER_DIR / "build-base-image.sh", BASE_IMAGE])
    tag, _ = bento
    previous = image_id(IMAGE_TAG)
    run([CONTAINER_DIR / "containerize.sh", tag, IMAGE_TAG])
    if previous and previous != image_id(IMAGE_TAG):  # drop the image this run replaced
        subprocess.run(["podman", "rmi", previous], capture_output=True)
    return IMAGE_TAG


def image_id(tag: str) -> str:
    result = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag],
                            capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


@pytest.fixture
def container_url(image, tmp_path):
    port, name = free_port(), f"credit-risk-test-{os.getpid()}"
    # The keys file reaches the container as a read-only volume, the way a Kubernetes Secret
    # does (deploy/k8s). It holds only hashes; the image's user (uid 1034) must read it.
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o755)
    shutil.copy(os.environ["CREDIT_RISK_API_KEYS_FILE"], secrets / "api-keys.jsonl")
    (secrets / "api-keys.jsonl").chmod(0o644)
    subprocess.run(
        ["podman", "run", "--detach", "--name", name, "--runtime", "runc",
         "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
         "--volume", f"{secrets}:/run/secrets/credit-risk:ro",
         "--env", "CREDIT_RISK_API_KEYS_FILE=/run/secrets/credit-risk/api-keys.jsonl",
         "--publish", f"127.0.0.1:{port}:3000", image],
        check=True, capture_output=True, timeout=60,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not ready(url):
            running = subprocess.run(["podman", "inspect", "--format", "{{.State.Running}}", name],
                                     capture_output=True, text=True).stdout.strip()
            assert running == "true", f"container exited:\n{logs(name)}"
            assert time.monotonic() < deadline, f"not ready in 90 s:\n{logs(name)}"
            time.sleep(0.3)
        yield url
    finally:
        subprocess.run(["podman", "rm", "--force", "--time", "5", name], capture_output=True)


def logs(name: str) -> str:
    result = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
    return (result.stdout + result.stderr)[-3000:]


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_container_answers_like_the_model_in_process(container_url, service):
    applications = [service.EXAMPLE_INPUT,
                    service.EXAMPLE_INPUT.model_copy(update={"previous_defaults": 3})]
    assert_batch_matches_in_process(container_url, service, applications)


def test_bento_packages_the_served_model_and_pinned_requirements(bento, service):
    _, folder = bento
    bento_yaml = (folder / "bento.yaml").read_text()
    assert f"tag: {service.STORED_MODEL.tag}" in bento_yaml
    installed = (folder / "env" / "python" / "requirements.txt").read_text()
    assert all(line in installed for line in service.PINNED)


def test_generated_dockerfile_passes_hadolint(bento):
    _, folder = bento
    hadolint = Path(sys.executable).with_name("hadolint")
    run([hadolint, "--config", EXAMPLE_DIR / ".hadolint.yaml",
         folder / "env" / "docker" / "Dockerfile"])
