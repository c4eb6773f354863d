"""Start the servers `make bench` compares, and load them with `hey`.

The load generator is `hey` (Debian package, written in Go): it keeps connections alive,
sends a fixed number of requests at a fixed concurrency and writes one CSV line per request,
from which this computes the percentiles. Its own cost is measured on every run
(CPU seconds per request, from the kernel's accounting of the child process) because on two
cores the client competes with the server: a Python client such as Locust spends more CPU
per request than a small model, and would measure itself.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "credit-risk"
BENCH = ROOT / "bench"
sys.path[:0] = [str(EXAMPLE)]

from ops import processes, replicas  # noqa: E402  (the example's own start/stop code)

HOST = replicas.HOST
READY_DEADLINE_S = 90


@dataclass(frozen=True)
class Server:
    """One configuration to measure: how to start it and what to send."""

    name: str
    label: str
    kind: str  # "bentoml", "fastapi" or "nginx"
    target: str = "service:CreditRisk"
    path: str = "/score"
    body: str = "single"  # "single", "list" (one-element list) or "batch64"
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class Point:
    concurrency: int
    requests: int
    ok: int
    errors: int
    shed: int  # of the errors, the 503s an admission limit answers at once
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    shed_p99_ms: float
    client_cpu_ms_per_request: float


def bodies(folder: Path) -> dict[str, Path]:
    """Request bodies as files for hey: one application, a one-element list, 64 rows."""
    from credit_risk.schema import EXAMPLE_INPUT

    one = EXAMPLE_INPUT.model_dump()
    contents = {"single": one, "list": {"applications": [one]},
                "batch64": {"applications": [one] * 64}}
    paths = {}
    for name, content in contents.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(content))
    return paths


# The benchmark measures serving, not access control: hey sends no API key, so the servers
# run in anonymous mode (no key check, no per-key rate limit).
ANONYMOUS = {"CREDIT_RISK_ALLOW_ANONYMOUS": "1"}


def process_env(server: Server) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", **ANONYMOUS,
            "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(BENCH)]), **dict(server.env)}


def log_to(run_dir: Path) -> None:
    """Servers started from now on log to the run directory (ops/replicas.py reads this
    variable too)."""
    os.environ["CREDIT_RISK_LOG_DIR"] = str(run_dir / "logs")


@contextmanager
def running(server: Server, run_dir: Path) -> Iterator[str]:
    """Start `server` on loopback, wait for /readyz, yield its URL, then stop all of it."""
    if server.kind != "nginx":
        with launched(server, run_dir) as (url, _):
            yield url
        return
    log_to(run_dir)
    started = replicas.start_replicas(2, run_dir, READY_DEADLINE_S, **ANONYMOUS, **dict(server.env))
    nginx = None
    try:
        front = processes.free_port()
        nginx = replicas.start_nginx([r.port for r in started], front, run_dir)
        yield f"http://{HOST}:{front}"
    finally:
        replicas.stop_all(nginx, started)


@contextmanager
def launched(server: Server, run_dir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start a one-process `server` (bentoml or fastapi) on loopback, wait for /readyz, yield
    its URL and process, then stop it and everything under it."""
    log_to(run_dir)
    port = processes.free_port()
    if server.kind == "fastapi":
        command = [sys.executable, "-m", "uvicorn", server.target, "--host", HOST,
                   "--port", str(port), "--log-level", "warning"]
    else:
        command = [sys.executable, "-m", "bentoml", "serve", server.target,
                   "--host", HOST, "--port", str(port)]
    log = open(run_dir / f"{server.name}.log", "w")
    process = subprocess.Popen(command, cwd=EXAMPLE if server.kind == "bentoml" else BENCH,
                               env=process_env(server), start_new_session=True,
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        url = f"http://{HOST}:{port}"
        processes.wait_until_ready(url, process, READY_DEADLINE_S,
                                  f"{server.name} (log: {run_dir / server.name}.log)")
        yield url, process
    finally:
        processes.stop(process)


def load(url: str, body: Path, concurrency: int, requests: int) -> Point:
    """Send `requests` POSTs of `body` with `concurrency` connections; summarise them."""
    requests -= requests % concurrency  # hey sends requests // concurrency per connection
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile("w+") as csv:
        subprocess.run(["hey", "-n", str(requests), "-c", str(concurrency), "-m", "POST",
                        "-T", "application/json", "-D", str(body), "-t", "30", "-o", "csv",
                        url], stdout=csv, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        csv.seek(0)
        rows = np.loadtxt(csv, delimiter=",", skiprows=1, ndmin=2)
    seconds, status, offset = rows[:, 0], rows[:, 6], rows[:, 7]
    ok, shed = status == 200, status == 503
    wall = (offset + seconds).max() - offset.min()
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    p50, p95, p99 = (np.percentile(seconds[ok], q) * 1000 if ok.any() else float("nan")
                     for q in (50, 95, 99))
    shed_p99 = round(np.percentile(seconds[shed], 99) * 1000, 2) if shed.any() else None
    return Point(concurrency=concurrency, requests=requests, ok=int(ok.sum()),
                 errors=requests - int(ok.sum()), shed=int(shed.sum()),
                 rps=round(ok.sum() / wall, 1),
                 p50_ms=round(p50, 2), p95_ms=round(p95, 2), p99_ms=round(p99, 2),
                 shed_p99_ms=shed_p99,
                 client_cpu_ms_per_request=round(client_cpu * 1000 / requests, 3))


def sweep(url: str, body: Path, concurrencies: list[int], requests: int) -> dict:
    """Warm up, load at each concurrency, then c=1 again to see what the burst left behind."""
    load(url, body, 8, min(requests, 200))
    points = [asdict(load(url, body, c, requests)) for c in concurrencies]
    return {"points": points, "after_burst": asdict(load(url, body, 1, requests))}
