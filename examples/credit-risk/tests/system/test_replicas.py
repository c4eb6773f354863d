"""Two replicas behind nginx (ops/replicas.py): a crashed replica costs at most the one answer
it was in the middle of sending, and rejoins when restarted."""

import re
import shutil
import threading
import time

import httpx
import pytest
from conftest import require
from servers import AUTH, START_DEADLINE_S

from credit_risk.schema import EXAMPLE_INPUT
from ops import processes, replicas
from ops.nginx import find_nginx

TRAFFIC_LIMIT_S = 60  # the traffic thread stops by itself after this, whatever happens
SCORE_200 = re.compile(r'^bentoml_service_request_total\{[^}]*endpoint="/score"[^}]*'
                       r'http_response_code="200"[^}]*\}\s+(\S+)$', re.MULTILINE)


def require_nginx() -> None:
    require(find_nginx() is not None, "nginx is not installed (apt-get install nginx)")


def wait_for(condition, deadline_s: float, what: str) -> None:
    processes.wait_until(condition, deadline_s, what)


def scored(url: str) -> float:
    """How many /score requests this replica answered with a 200, from its /metrics."""
    return sum(float(value) for value in SCORE_200.findall(httpx.get(f"{url}/metrics",
                                                                      timeout=5).text))


class Traffic(threading.Thread):
    """POST /score through nginx, one request after another, until stopped or time is up.

    Each result is (monotonic time it finished, status code or exception, X-Upstream).
    """

    def __init__(self, url: str, body: dict) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.stopped = threading.Event()
        self.results: list[tuple[float, int | str, str]] = []

    def run(self) -> None:
        deadline = time.monotonic() + TRAFFIC_LIMIT_S
        # Longer than nginx's proxy_read_timeout (15 s): a restarted replica accepts
        # connections before its worker can answer, and nginx retries elsewhere after that.
        with httpx.Client(timeout=30, headers=AUTH) as client:
            while not self.stopped.is_set() and time.monotonic() < deadline:
                try:
                    response = client.post(f"{self.url}/score", json=self.body)
                    result = (response.status_code, response.headers.get("x-upstream", ""))
                except httpx.HTTPError as error:
                    result = (repr(error), "")
                self.results.append((time.monotonic(), *result))
                self.stopped.wait(0.01)  # pacing, about 50 requests a second

    def ok_since(self, since: float, port: int | None = None) -> int:
        """200s finished after `since`, answered by the replica on `port` if given."""
        return sum(1 for t, status, via in list(self.results)
                   if t > since and status == 200
                   and (port is None or via.split(", ")[-1] == f"127.0.0.1:{port}"))

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=15)


@pytest.mark.timeout(240)
def test_a_crashed_replica_costs_at_most_its_answer_in_flight_and_rejoins(trained, service):
    require_nginx()
    run_dir = replicas.make_run_dir()
    started: list = []
    nginx = traffic = None
    try:
        started = replicas.start_replicas(2, run_dir, START_DEADLINE_S, OMP_NUM_THREADS="1")
        victim, survivor = started
        front_port = processes.free_port()
        nginx = replicas.start_nginx([r.port for r in started], front_port, run_dir)
        front = f"http://127.0.0.1:{front_port}"
        assert httpx.get(f"{front}/metrics", timeout=5).status_code == 404  # not via the proxy
        traffic = Traffic(front, EXAMPLE_INPUT.model_dump())
        traffic.start()
        wait_for(lambda: all(traffic.ok_since(0, r.port) >= 5 for r in started), 30,
                 "both replicas answer through nginx")

        crashed_at = time.monotonic()
        processes.kill(victim.process)  # SIGKILL to bentoml serve and its worker: a crash
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{victim.url}/readyz", timeout=2)
        # Keep the traffic going for a few seconds with one replica down; nginx marks the
        # dead one failed for fail_timeout=5s, then probes it again with live requests.
        wait_for(lambda: time.monotonic() > crashed_at + 6 and traffic.ok_since(crashed_at) > 0,
                 30, "requests succeed after the crash")

        replicas.start_replica(victim, OMP_NUM_THREADS="1")  # same port
        processes.wait_until_ready(victim.url, victim.process, START_DEADLINE_S, "restarted")
        ready_at = time.monotonic()
        # A new process counts from zero, so its counter rising means nginx sends it traffic.
        wait_for(lambda: scored(victim.url) >= 5 and traffic.ok_since(ready_at, victim.port),
                 30, "the restarted replica gets requests through nginx again")
        traffic.stop()
        assert not traffic.is_alive()
        survivor_scored = scored(survivor.url)
    finally:
        if traffic is not None:
            traffic.stop()
        replicas.stop_all(nginx, started)
        shutil.rmtree(run_dir, ignore_errors=True)

    results = traffic.results
    errors = [(round(t - crashed_at, 2), status) for t, status, _ in results if status != 200]
    retried = sum(1 for _, _, via in results if "," in via)  # X-Upstream lists two replicas
    summary = (f"{len(results)} requests, {len(errors)} errors, {retried} retried by nginx, "
               f"{traffic.ok_since(crashed_at)} succeeded after the crash")
    print(f"\nfailover: {summary}")
    # The client sends one request at a time, so at most one was in flight at the crash. If
    # the replica died after nginx had passed its response headers on, nginx cannot retry
    # (the client already has part of an answer) and closes the connection: that one request
    # fails, at the moment of the crash. Every other request must succeed.
    cut_off = [(after, status) for after, status in errors
               if 0 <= after < 1 and "RemoteProtocolError" in str(status)]
    assert errors == cut_off and len(cut_off) <= 1, (
        f"{summary}; failed (seconds after crash, status): {errors[:10]}")
    assert traffic.ok_since(crashed_at, survivor.port) > 0, summary
    assert survivor_scored > 0
