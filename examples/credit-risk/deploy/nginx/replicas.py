"""Run N replicas of the credit-risk service behind nginx, on one machine.

From the example folder, with the virtual environment active and a trained model:

    python deploy/nginx/replicas.py start --replicas 2 --port 8080

starts 2 `bentoml serve` replicas on free loopback ports, waits until each answers
/readyz, starts nginx on 127.0.0.1:8080 in front of them, prints the URL and runs until
Ctrl-C or SIGTERM, then stops nginx and the replicas. Logs and the rendered nginx.conf are
in the run directory it prints.

Each replica gets its own BENTOML_HOME (the model store is shared through a symlink): BentoML
keeps its Prometheus files in BENTOML_HOME/prometheus_multiproc_dir and empties that folder
at start, so replicas sharing one home would wipe and mix each other's metrics. Each also
gets its own prediction-log folder, `<log dir>/replica-<i>`, since a rotating log file is
not safe to share between processes.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
EXAMPLE_DIR = HERE.parents[1]
TEMPLATE = HERE / "nginx.conf.template"
READY_DEADLINE_S = 60
HOST = "127.0.0.1"


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


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def find_nginx() -> str | None:
    """The nginx binary ($NGINX, PATH, or Debian's /usr/sbin/nginx), or None."""
    for candidate in (os.environ.get("NGINX"), shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def make_run_dir() -> Path:
    """A fresh run directory; traversable so nginx workers (nobody, when run as root) work."""
    run_dir = Path(tempfile.mkdtemp(prefix="credit-risk-replicas-"))
    run_dir.chmod(0o755)
    return run_dir


def new_replica(index: int, run_dir: Path, port: int | None = None,
                log_dir: Path | None = None) -> Replica:
    """Describe replica `index` (its own BENTOML_HOME sharing the model store); not started."""
    shared_home = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    home = run_dir / f"replica-{index}" / "bentoml-home"
    home.mkdir(parents=True, exist_ok=True)
    models = home / "models"
    if not models.exists():
        models.symlink_to((shared_home / "models").resolve(), target_is_directory=True)
    base_logs = log_dir or Path(os.environ.get("CREDIT_RISK_PREDICTION_LOG_DIR",
                                               EXAMPLE_DIR / "prediction-logs"))
    return Replica(index=index, port=port or free_port(), home=home,
                   log_dir=Path(base_logs).resolve() / f"replica-{index}",
                   log_path=run_dir / f"replica-{index}.log")


def start_replica(replica: Replica, **env: str) -> Replica:
    """Start (or restart, on the same port) `bentoml serve` in its own process group."""
    log = open(replica.log_path, "a")  # the child gets its own copy; ours is closed below
    try:
        replica.process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", "service:CreditRisk",
             "--host", HOST, "--port", str(replica.port)],
            cwd=EXAMPLE_DIR, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1", **env,
                 "BENTOML_HOME": str(replica.home),
                 "CREDIT_RISK_PREDICTION_LOG_DIR": str(replica.log_dir)},
        )
    finally:
        log.close()
    return replica


def wait_until_ready(url: str, process: subprocess.Popen, deadline_s: float,
                     what: str = "server", verify: ssl.SSLContext | bool = True) -> None:
    """Poll url/readyz until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url}/readyz not ready after {deadline_s}s")


def start_replicas(n: int, run_dir: Path, deadline_s: float = READY_DEADLINE_S,
                   **env: str) -> list[Replica]:
    """Start n replicas on free ports and wait for each /readyz; stops them all on failure."""
    replicas = [new_replica(i, run_dir) for i in range(n)]
    try:
        for replica in replicas:
            start_replica(replica, **env)
        for replica in replicas:
            wait_until_ready(replica.url, replica.process, deadline_s,
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
    tls_lines = TLS_LINES.format(cert=Path(tls[0]).resolve(), key=Path(tls[1]).resolve()) \
        if tls else ""
    text = TEMPLATE.read_text()
    for name, value in {"RUN_DIR": str(run_dir), "PORT": str(front_port),
                        "UPSTREAMS": upstreams, "TLS_LISTEN": " ssl" if tls else "",
                        "TLS": tls_lines}.items():
        text = text.replace("${" + name + "}", value)
    if leftover := re.search(r"\$\{\w+\}", text):
        raise ValueError(f"unfilled placeholder {leftover.group()} in {TEMPLATE}")
    conf = run_dir / "nginx.conf"
    conf.write_text(text)
    return conf


def start_nginx(ports: list[int], front_port: int, run_dir: Path,
                deadline_s: float = 10, tls: tuple[Path, Path] | None = None
                ) -> subprocess.Popen:
    """Render the config, check it with `nginx -t`, run nginx and wait until it proxies
    (over HTTPS, trusting the certificate, when tls=(certificate, key) is given)."""
    nginx = find_nginx()
    if nginx is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
    conf = render_config(ports, front_port, run_dir, tls)
    # -e: the error log before the config is read (the default is under /var/log).
    command = [nginx, "-c", str(conf), "-p", str(run_dir), "-e", str(run_dir / "error.log")]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t rejected {conf}:\n{check.stderr}")
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    scheme, verify = ("https", ssl.create_default_context(cafile=tls[0])) if tls else ("http", True)
    try:
        wait_until_ready(f"{scheme}://{HOST}:{front_port}", process, deadline_s,
                         f"nginx (log: {run_dir / 'error.log'})", verify=verify)
    except BaseException:
        stop_process(process)
        raise
    return process


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process from /proc, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), fields[19]


def process_tree(pid: int) -> dict[int, str]:
    """{pid: start time} for pid and all its descendants (Linux /proc).

    BentoML's process manager starts each worker in a session of its own, so signalling the
    `bentoml serve` process group does not reach the workers: after a SIGKILL of the group,
    the orphaned worker keeps the listening socket and goes on serving.
    """
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            parents[int(entry.name)] = stat
    tree, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if current in parents:
            tree[current] = parents[current][1]
            todo.extend(child for child, (parent, _) in parents.items() if parent == current)
    return tree


def kill_tree(tree: dict[int, str], sig: int = signal.SIGKILL) -> None:
    """Signal each process of a process_tree() that is still the same process (start time)."""
    for pid, started in tree.items():
        stat = _stat(pid)
        if stat and stat[1] == started:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def kill_replica(replica: Replica) -> None:
    """Crash the replica: SIGKILL `bentoml serve` and every process under it, and reap it."""
    if replica.process is not None and replica.process.poll() is None:
        kill_tree(process_tree(replica.process.pid))
        replica.process.wait(timeout=15)


def stop_process(process: subprocess.Popen | None) -> None:
    """SIGTERM the process group, SIGKILL its whole tree after 15 s or if anything lingers."""
    if process is None or process.poll() is not None:
        return
    tree = process_tree(process.pid)
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        pass
    kill_tree(tree)  # a no-op after a clean shutdown: those processes are gone
    process.wait()


def stop_all(nginx: subprocess.Popen | None, replicas: list[Replica]) -> None:
    """Stop nginx first (no new requests), then every replica."""
    stop_process(nginx)
    for replica in replicas:
        stop_process(replica.process)


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
        while nginx.poll() is None:
            for replica in replicas:
                if replica.process.poll() is not None and replica.index not in reported:
                    print(f"replica {replica.index} exited with {replica.process.returncode};"
                          " nginx sends its traffic to the others", flush=True)
                    reported.add(replica.index)
            time.sleep(1)
        print(f"nginx exited with {nginx.returncode}", file=sys.stderr)
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
