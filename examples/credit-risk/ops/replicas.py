"""Run N replicas of the credit-risk service behind nginx, on one machine.

From the example folder, with the virtual environment active and a trained model:

    python -m ops.replicas start --replicas 2 --port 8080

starts 2 `bentoml serve` replicas on free loopback ports, waits until each answers
/readyz, starts nginx on 127.0.0.1:8080 in front of them, prints the URL and runs until
Ctrl-C or SIGTERM, then stops nginx and the replicas. Logs and the rendered nginx.conf are
in the run directory it prints.

Each replica gets its own BENTOML_HOME (the model store is shared through a symlink): BentoML
keeps its Prometheus files in BENTOML_HOME/prometheus_multiproc_dir and empties that folder
at start, so replicas sharing one home would wipe and mix each other's metrics. Each also
gets its own log folder, `<log dir>/replica-<i>`, since a rotating log file is not safe to
share between processes.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from credit_risk.settings import Settings
from ops import processes
from ops.nginx import Nginx, render
from ops.processes import EXAMPLE_DIR, HOST

TEMPLATE = EXAMPLE_DIR / "deploy" / "nginx" / "nginx.conf.template"
READY_DEADLINE_S = 60


@dataclass
class Replica:
    """One `bentoml serve` process group, on a fixed port so it can be restarted in place."""

    index: int
    port: int
    home: Path
    log_dir: Path
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def make_run_dir() -> Path:
    """A fresh run directory; traversable so nginx workers (nobody, when run as root) work."""
    run_dir = Path(tempfile.mkdtemp(prefix="credit-risk-replicas-"))
    run_dir.chmod(0o755)
    return run_dir


def new_replica(index: int, run_dir: Path, log_dir: Path | None = None) -> Replica:
    """Describe replica `index` (its own BENTOML_HOME sharing the model store); not started."""
    shared_home = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    home = run_dir / f"replica-{index}" / "bentoml-home"
    home.mkdir(parents=True, exist_ok=True)
    models = home / "models"
    if not models.exists():
        models.symlink_to((shared_home / "models").resolve(), target_is_directory=True)
    base_logs = log_dir or Settings.from_env().logs
    return Replica(index=index, port=processes.free_port(), home=home,
                   log_dir=Path(base_logs).resolve() / f"replica-{index}",
                   log_path=run_dir / f"replica-{index}.log")


def start_replica(replica: Replica, **env: str) -> Replica:
    """Start (or restart, on the same port) `bentoml serve` in its own process group."""
    replica.process = processes.bentoml_serve(
        replica.port, replica.log_path, **env, BENTOML_HOME=str(replica.home),
        CREDIT_RISK_LOG_DIR=str(replica.log_dir))
    return replica


def start_replicas(n: int, run_dir: Path, deadline_s: float = READY_DEADLINE_S,
                   **env: str) -> list[Replica]:
    """Start n replicas on free ports and wait for each /readyz; stops them all on failure."""
    replicas = [new_replica(i, run_dir) for i in range(n)]
    try:
        for replica in replicas:
            start_replica(replica, **env)
        for replica in replicas:
            processes.wait_until_ready(replica.url, replica.process, deadline_s,
                                       f"replica {replica.index} (log: {replica.log_path})")
    except BaseException:
        stop_all(None, replicas)
        raise
    return replicas


# --8<-- [start:tls]
# HTTPS at the proxy: nginx holds the certificate and its key, and speaks plain HTTP to the
# replicas on loopback. Only TLS 1.2 and 1.3; nginx's default ciphers for them are sound.
TLS_LINES = """\
        ssl_certificate     {cert};
        ssl_certificate_key {key};
        ssl_protocols       TLSv1.2 TLSv1.3;
        ssl_session_cache   shared:tls:1m;  # resumed sessions skip the full handshake"""
# --8<-- [end:tls]


def render_config(ports: list[int], front_port: int, run_dir: Path,
                  tls: tuple[Path, Path] | None = None) -> Path:
    """Write run_dir/nginx.conf from the template, one upstream server per port; with
    tls=(certificate, key), nginx answers HTTPS only."""
    upstreams = "\n".join(f"        server {HOST}:{port} max_fails=1 fail_timeout=5s;"
                          for port in ports)
    tls_lines = (TLS_LINES.format(cert=Path(tls[0]).resolve(), key=Path(tls[1]).resolve())
                 if tls else "")
    return render(TEMPLATE, run_dir / "nginx.conf", RUN_DIR=str(run_dir), PORT=str(front_port),
                  UPSTREAMS=upstreams, TLS_LISTEN=" ssl" if tls else "", TLS=tls_lines)


def start_nginx(ports: list[int], front_port: int, run_dir: Path,
                tls: tuple[Path, Path] | None = None) -> Nginx:
    """nginx in front of the replicas, ready (over HTTPS, trusting the certificate, when
    tls=(certificate, key) is given)."""
    conf = render_config(ports, front_port, run_dir, tls)
    return Nginx(conf, run_dir, front_port).start(tls_ca=tls[0] if tls else None)


def stop_all(nginx: Nginx | None, replicas: list[Replica]) -> None:
    """Stop nginx first (no new requests), then every replica."""
    if nginx is not None:
        nginx.stop()
    for replica in replicas:
        processes.stop(replica.process)


def start(n: int, front_port: int, deadline_s: float,
          tls: tuple[Path, Path] | None = None) -> None:
    """The `start` command: replicas, nginx, wait for Ctrl-C or SIGTERM, clean up."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # runs the finally below
    run_dir = make_run_dir()
    replicas: list[Replica] = []
    nginx = None
    try:
        print(f"run directory: {run_dir}", flush=True)
        replicas = start_replicas(n, run_dir, deadline_s)
        for replica in replicas:
            print(f"replica {replica.index}: {replica.url}", flush=True)
        nginx = start_nginx([r.port for r in replicas], front_port, run_dir, tls=tls)
        scheme = "https" if tls else "http"
        print(f"serving on {scheme}://{HOST}:{front_port} (Ctrl-C to stop)", flush=True)
        reported: set[int] = set()
        while nginx.running():
            for replica in replicas:
                if replica.process.poll() is not None and replica.index not in reported:
                    print(f"replica {replica.index} exited with {replica.process.returncode};"
                          " nginx sends its traffic to the others", flush=True)
                    reported.add(replica.index)
            try:
                nginx.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        print(f"nginx exited with {nginx.process.returncode}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(nginx, replicas)
        print("stopped nginx and the replicas", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start_command = commands.add_parser("start", help="run replicas behind nginx until Ctrl-C")
    start_command.add_argument("--replicas", type=int, default=2)
    start_command.add_argument("--port", type=int, default=8080, help="nginx's port")
    start_command.add_argument("--deadline", type=float, default=READY_DEADLINE_S,
                               help="seconds each replica may take to become ready")
    start_command.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate")
    start_command.add_argument("--tls-key", type=Path, help="... and this private key")
    args = parser.parse_args()
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    start(args.replicas, args.port, args.deadline, tls)


if __name__ == "__main__":
    main()
