"""Start and stop real `bentoml serve` processes for the tests."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

EXAMPLE_DIR = Path(__file__).resolve().parents[1]
START_DEADLINE_S = 60
AUTH = {"X-API-Key": os.environ["CREDIT_RISK_API_KEY"]}  # minted by conftest.py


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(port: int, log: Path, **env) -> subprocess.Popen:
    """Start `bentoml serve`, its output to the file `log` (a pipe nobody reads would fill
    up with access-log lines and block the server)."""
    with open(log, "w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", "service:CreditRisk",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=EXAMPLE_DIR, env={**os.environ, **env}, start_new_session=True,
            stdout=output, stderr=subprocess.STDOUT,
        )


def failed_start(log: Path, **env) -> tuple[int, str]:
    """Start a `bentoml serve` that must stop by itself before it is ready; return its exit
    code and output."""
    process = serve(free_port(), log, **env)
    try:
        process.wait(timeout=START_DEADLINE_S)
    finally:
        stop(process)
    return process.returncode, log.read_text()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_ready(url: str, process: subprocess.Popen, deadline_s: float) -> None:
    """Poll /readyz until it answers 200; fail early if the server exits."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url}/readyz not ready after {deadline_s}s")


@contextmanager
def served(log: Path | None = None, **env):
    """A ready `bentoml serve` on a free loopback port; yields its URL, stops it after.
    Its output goes to `log` (a temporary file if None)."""
    port = free_port()
    log = log or Path(tempfile.mkdtemp(prefix="serve-")) / "serve.log"
    process = serve(port, log, **env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, START_DEADLINE_S)
        yield url
    except BaseException:
        print(log.read_text()[-5000:])  # pytest shows it with the failure
        raise
    finally:
        stop(process)


def assert_batch_matches_in_process(url: str, service, applications: list) -> None:
    """POST applications to url's /score_batch; the answers must equal service.score() here."""
    response = httpx.post(f"{url}/score_batch", timeout=10, headers=AUTH,
                          json={"applications": [a.model_dump() for a in applications]})
    assert response.status_code == 200, response.text
    expected = service.score(service.MODEL, applications,
                             service.STORED_MODEL.info.metadata["decision_threshold"],
                             service.STORED_MODEL.tag.version)
    answers = response.json()["scores"]
    assert [{**a, "request_id": ""} for a in answers] == [
        s.model_dump() | {"request_id": ""} for s in expected]
