"""Real `bentoml serve` processes for the tests, through ops.processes (one copy of those
helpers in the example)."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import httpx

from credit_risk import scoring
from ops import processes

START_DEADLINE_S = 120  # generous: a loaded 2-core CI machine starts BentoML slowly
AUTH = {"X-API-Key": os.environ["CREDIT_RISK_API_KEY"]}  # minted by conftest.py


def failed_start(log: Path, deadline_s: float = START_DEADLINE_S, **env) -> tuple[int, str]:
    """Start a `bentoml serve` that must stop by itself before it is ready; return its exit
    code and output."""
    process = processes.bentoml_serve(processes.free_port(), log, **env)
    try:
        process.wait(timeout=deadline_s)
    finally:
        processes.stop(process)
    return process.returncode, log.read_text()


@contextmanager
def served(log: Path | None = None, deadline_s: float = START_DEADLINE_S, **env):
    """A ready `bentoml serve` on a free loopback port; yields its URL, stops its whole
    process tree after. Its output goes to `log` (a temporary file if None)."""
    port = processes.free_port()
    log = log or Path(tempfile.mkdtemp(prefix="serve-")) / "serve.log"
    process = processes.bentoml_serve(port, log, **env)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_until_ready(url, process, deadline_s, "bentoml serve")
        yield url
    except BaseException:
        print(log.read_text()[-5000:])  # pytest shows it with the failure
        raise
    finally:
        processes.stop(process)


def assert_batch_matches_in_process(url: str, model_tag: str, applications: list) -> None:
    """POST applications to url's /score_batch; the answers must equal scoring.score() here."""
    response = httpx.post(f"{url}/score_batch", timeout=10, headers=AUTH,
                          json={"applications": [a.model_dump() for a in applications]})
    assert response.status_code == 200, response.text
    expected = scoring.score(scoring.load(model_tag), applications)
    answers = response.json()["scores"]
    assert [{**a, "request_id": ""} for a in answers] == [
        s.model_dump() | {"request_id": ""} for s in expected]
