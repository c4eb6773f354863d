"""End to end: a real `bentoml serve` process on a free loopback port."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

EXAMPLE_DIR = Path(__file__).resolve().parents[1]
START_DEADLINE_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.fixture(scope="module")
def server_url(saved_model):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "service:IrisClassifier",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=EXAMPLE_DIR,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, START_DEADLINE_S)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.timeout(120)
def test_served_model_answers_like_the_model_in_process(server_url, saved_model):
    from service import EXAMPLE_INPUT, predict

    response = httpx.post(f"{server_url}/classify", json=EXAMPLE_INPUT.model_dump(), timeout=10)
    assert response.status_code == 200
    expected = predict(saved_model.load_model(), EXAMPLE_INPUT, saved_model.tag.version)
    assert response.json() == expected.model_dump()


@pytest.mark.timeout(120)
def test_served_model_rejects_bad_input_with_json(server_url):
    response = httpx.post(f"{server_url}/classify", json={"sepal_length": -1}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.timeout(120)
def test_served_model_exports_prometheus_metrics(server_url):
    from service import EXAMPLE_INPUT

    httpx.post(f"{server_url}/classify", json=EXAMPLE_INPUT.model_dump(), timeout=10)
    metrics = httpx.get(f"{server_url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert 'bentoml_service_request_total{' in metrics.text
    assert 'endpoint="/classify"' in metrics.text
