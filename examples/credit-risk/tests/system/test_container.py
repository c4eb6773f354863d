"""The container: the bento built into an OCI image with podman, started, and called; then
the same with the Docker user's commands.

Needs podman, runc and debootstrap (Debian packages) and root to build the base image. Outside
CI a missing tool skips these tests with the reason; with CI=true it fails them. The image is
the one the release process builds for this model (ops/release/build.py): keyed by its
content, so a second run builds nothing.
"""

import contextlib
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
from ops.processes import EXAMPLE_DIR, HOST, answers, free_port, wait_until
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


# The chapter's Docker commands (docs/practices/containerization.md, the "Docker" tabs), with
# this test's names filled in; tests/test_code_blocks.py checks that the chapter shows these.
DOCKER_CONTAINERIZE = "bentoml containerize {bento} --image-tag {image}"
DOCKER_RUN = ("docker run --rm --detach --name {name}"
              " --volume {volume}"
              " --env CREDIT_RISK_API_KEYS_FILE=/run/secrets/credit-risk/api-keys.jsonl"
              " --publish 127.0.0.1:{port}:3000 {image}")
# Where no Docker engine answers, `docker` is podman's Docker-compatible command line (Debian's
# podman-docker). This machine's podman needs settings (DESIGN.md) that the podman path passes
# as flags; here they come from a containers.conf, so the commands stay a Docker user's.
PODMAN_SETTINGS = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory) -> dict:
    """The environment in which `docker` is a Docker engine's client, or podman's."""
    tools = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    version = ["docker", "version", "--format", "{{json .Server.Version}}"]
    if shutil.which("docker") and subprocess.run(version, capture_output=True).returncode == 0:
        return {"PATH": tools}
    shim = Path("/usr/bin/docker")  # podman-docker's script: exec /usr/bin/podman "$@"
    require(shim.is_file() and "podman" in subprocess.run(
        [shim, "--version"], capture_output=True, text=True).stdout,
        "no Docker engine answers and podman-docker is not installed "
        "(apt-get install podman-docker)")
    folder = tmp_path_factory.mktemp("docker")
    (folder / "bin").mkdir()
    (folder / "bin" / "docker").symlink_to(shim)
    (folder / "containers.conf").write_text(PODMAN_SETTINGS)
    return {"PATH": f"{folder / 'bin'}{os.pathsep}{tools}",
            "CONTAINERS_CONF": str(folder / "containers.conf"),
            "BUILDAH_ISOLATION": "chroot",  # RUN steps without a runc container, as podman's
            # BentoML takes podman's version (4.x) for Docker's and refuses BuildKit below
            # 18.09; podman builds the Dockerfile without it.
            "DOCKER_BUILDKIT": "0",
            "BENTO_BASE_IMAGE": podman.LOCAL_BASE_IMAGE}  # no registry: the podman path's


def test_the_docker_commands_build_and_run_the_image(release, docker_env, tmp_path):
    # The release fixture has built the base image (where no registry is reachable) and the
    # image's layers, which the podman behind `docker` reuses; the bento is the Docker tab's.
    bento = image = "credit_risk_service:docker-path-test"
    with contextlib.suppress(bentoml.exceptions.NotFound):
        bentoml.bentos.delete(bento)
    podman.sh(sys.executable, "-m", "bentoml", "build", "--version", bento.split(":")[1],
              CREDIT_RISK_MODEL=release.model, **docker_env)
    podman.sh(*DOCKER_CONTAINERIZE.format(bento=bento, image=image).split(), **docker_env)
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o755)
    shutil.copy(Path(os.environ["CREDIT_RISK_STATE_DIR"]) / "api-keys.jsonl", secrets)
    (secrets / "api-keys.jsonl").chmod(0o644)
    name, port = f"credit-risk-docker-{os.getpid()}", free_port()
    volume = f"{secrets}:/run/secrets/credit-risk:ro"
    command = DOCKER_RUN.format(name=name, volume=volume, port=port, image=image).split()
    env = {**os.environ, **docker_env}
    try:
        podman.sh(*command, **docker_env)
        url = f"http://{HOST}:{port}"
        running = ["docker", "inspect", "--format", "{{.State.Running}}", name]
        wait_until(lambda: answers(f"{url}/readyz"), 120, f"docker container {name}",
                   lambda: subprocess.run(running, env=env, capture_output=True,
                                          text=True).stdout.strip() == "true")
        assert_batch_matches_in_process(url, release.model, [EXAMPLE_INPUT])
    finally:
        subprocess.run(["docker", "rm", "--force", name], env=env, capture_output=True,
                       timeout=60)
        subprocess.run(["docker", "rmi", image], env=env, capture_output=True, timeout=60)
        with contextlib.suppress(bentoml.exceptions.NotFound):
            bentoml.bentos.delete(bento)
