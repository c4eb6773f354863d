"""Build and run images with podman, without a Docker engine or a registry."""

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from ops.processes import EXAMPLE_DIR, HOST, answers, free_port, wait_until

# The base image deploy/container/build-base-image.sh makes where no registry is reachable.
LOCAL_BASE_IMAGE = "localhost/handbook/python:3.11-bookworm"
CONTAINER_DIR = EXAMPLE_DIR / "deploy" / "container"
CONTAINER_LOG_DIR = "/home/bentoml/logs"  # in the image's home: its user may write there
# podman with Debian's runc needs explicit limits here (see DESIGN.md's machine facts).
RUN_OPTIONS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024",
               "--ulimit", "nproc=4096:4096"]


def sh(*command, cwd: Path = EXAMPLE_DIR, timeout: float = 900, **env: str) -> str:
    """Run a command with this environment's tools on PATH; raise with its output tail."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run([str(part) for part in command], cwd=cwd, text=True,
                            capture_output=True, timeout=timeout,
                            env={**os.environ, "PATH": path, "NO_COLOR": "1", **env})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout.strip()


def image_id(image: str) -> str | None:
    result = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", image],
                            capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_base_image(image: str = LOCAL_BASE_IMAGE) -> str:
    """The base image's id, built first if missing (once per machine; needs root)."""
    if image_id(image) is None:
        sh(CONTAINER_DIR / "build-base-image.sh", image)
    return image_id(image)


def containerize(bento: str, image: str) -> None:
    sh(CONTAINER_DIR / "containerize.sh", bento, image)


@dataclass(frozen=True)
class Container:
    """One podman container serving on a loopback port."""

    image: str
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def upstream(self) -> str:
        return f"{HOST}:{self.port}"

    def logs(self) -> str:
        result = subprocess.run(["podman", "logs", self.name], capture_output=True, text=True)
        return (result.stdout + result.stderr)[-3000:]

    def running(self) -> bool:
        return subprocess.run(["podman", "inspect", "--format", "{{.State.Running}}", self.name],
                              capture_output=True, text=True).stdout.strip() == "true"

    def remove(self) -> None:
        subprocess.run(["podman", "rm", "--force", "--time", "5", self.name],
                       capture_output=True, timeout=60)


def run(image: str, role: str, env: dict | None = None, volumes: dict | None = None,
        log_dir: Path | None = None, deadline_s: float = 120) -> Container:
    """`podman run` the image on a free loopback port and wait for /readyz; the container is
    removed if it does not get ready. `volumes` (host path -> container path) are mounted
    read-only; `log_dir`, a host folder, becomes the service's CREDIT_RISK_LOG_DIR, writable
    (podman's `U` option gives it to the container's user)."""
    container = Container(image, f"credit-risk-{role}-{uuid.uuid4().hex[:8]}", free_port())
    env = dict(env or {})
    mounts = [f"{source}:{target}:ro" for source, target in (volumes or {}).items()]
    if log_dir is not None:
        env["CREDIT_RISK_LOG_DIR"] = CONTAINER_LOG_DIR
        mounts.append(f"{log_dir}:{CONTAINER_LOG_DIR}:rw,U")
    options = [part for name, value in env.items() for part in ("--env", f"{name}={value}")]
    options += [part for mount in mounts for part in ("--volume", mount)]
    started = subprocess.run(
        ["podman", "run", "--detach", "--name", container.name, *RUN_OPTIONS, *options,
         "--publish", f"{HOST}:{container.port}:3000", image],
        capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        raise RuntimeError(f"podman run {image} failed: {started.stderr[-2000:]}")
    try:
        wait_until(lambda: answers(f"{container.url}/readyz"), deadline_s,
                   f"container {container.name}", container.running)
    except (RuntimeError, TimeoutError) as error:
        logs = container.logs()
        container.remove()
        raise RuntimeError(f"{error}:\n{logs}") from None
    except BaseException:
        container.remove()
        raise
    return container
