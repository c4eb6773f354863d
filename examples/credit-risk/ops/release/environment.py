"""Production on this machine: nginx on a loopback port, weighting the live containers.

`route()` rewrites nginx's upstream weights and reloads it gracefully: requests in flight
finish on the old workers, and `route()` returns once every old worker has exited, so from
then on every request follows the new weights.
"""

import uuid
from pathlib import Path

from ops import podman
from ops.nginx import LoopbackProxy, Nginx, render
from ops.processes import EXAMPLE_DIR
from ops.release.build import Release
from ops.release.stages import StageFailed

CANARY_TEMPLATE = EXAMPLE_DIR / "deploy" / "canary" / "nginx.conf.template"
# The release's own traffic carries no key. A real deployment mounts the keys file as
# deploy/k8s does and drops this setting.
CONTAINER_ENV = {"CREDIT_RISK_ALLOW_ANONYMOUS": "1", "OMP_NUM_THREADS": "1"}


def start_container(release: Release, role: str, log_dir: Path | None = None,
                    deadline_s: float = 120) -> podman.Container:
    """`podman run` the release's image on a free loopback port, ready on /readyz; its
    prediction and audit logs go to `log_dir` on this machine when given."""
    try:
        return podman.run(release.image, role, env=CONTAINER_ENV, log_dir=log_dir,
                          deadline_s=deadline_s)
    except RuntimeError as error:
        raise StageFailed(str(error)) from None


class Production(LoopbackProxy):
    """nginx in front of the live release (`stable`) and, during a canary, the candidate.
    Its nginx starts with the first `route()`."""

    def __init__(self, port: int | None = None, run_dir: Path | None = None) -> None:
        super().__init__("credit-risk-release-", run_dir, port)
        self.nginx: Nginx | None = None
        self.stable: podman.Container | None = None  # the release taking all traffic
        self.releases: dict[str, Release] = {}       # container name -> its release
        self.log_dirs: dict[str, Path] = {}          # container name -> its logs, here
        self.generation = 0

    def release_of(self, container: podman.Container | None) -> Release | None:
        return self.releases.get(container.name) if container else None

    def launch(self, release: Release, role: str) -> podman.Container:
        """Start a container of `release`; it takes traffic once routed. Its logs go to a
        folder of its own under run_dir/logs/, so they outlive the container (the shadow
        stage reads the candidate's)."""
        log_dir = self.run_dir / "logs" / f"{role}-{uuid.uuid4().hex[:8]}"
        log_dir.mkdir(parents=True)
        container = start_container(release, role, log_dir)
        self.releases[container.name] = release
        self.log_dirs[container.name] = log_dir
        return container

    def route(self, weights: dict[podman.Container, int]) -> None:
        """Send each container its share of the traffic (weights are relative)."""
        self.generation += 1
        upstreams = "\n".join(f"        server {c.upstream} weight={w};"
                              for c, w in weights.items() if w > 0)
        conf = render(CANARY_TEMPLATE, self.run_dir / "nginx.conf", RUN_DIR=str(self.run_dir),
                      PORT=str(self.port), UPSTREAMS=upstreams,
                      GENERATION=str(self.generation))
        try:
            if self.nginx is None or not self.nginx.running():
                self.nginx = Nginx(conf, self.run_dir, self.port).start()
            else:
                self.nginx.reload()
        except (RuntimeError, TimeoutError) as error:
            raise StageFailed(str(error)) from None

    def serve(self, container: podman.Container) -> None:
        """Make `container` the stable release taking all traffic."""
        self.route({container: 100})
        self.stable = container

    def close(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        if self.stable is not None:
            self.stable.remove()
        self.stable = None
