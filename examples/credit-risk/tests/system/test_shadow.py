"""The shadow stage (ops/release/shadow.py) with real nginx and real `bentoml serve`.

1. A shadow candidate that is down, slow or failing never harms production: the clients get
   production's answers, byte for byte the same as without a shadow, none fails, no byte of
   the candidate's answer reaches them, and p99 stays within a bound we can guarantee.
2. With a real candidate, the stage pairs every mirrored answer with production's, and its
   evidence matches what the two models decide in this process.

What a shadow costs (measured here, see deploy/shadow/nginx.conf.template): nginx finishes a
request only once its mirror subrequest has finished, and on a keep-alive connection it reads
the client's next request only after that. So a slow candidate delays every *next* request
of a client that reuses its connection by up to the copy's timeout (`ShadowPolicy.timeout_ms`,
the proxy timeouts of the shadow location); the answer the client is waiting for is not
delayed, and a client that opens a new connection per request pays nothing. The bound these
tests assert is therefore: p99 with a shadow <= p99 without + timeout + NOISE_MS.
"""

import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import require
from servers import AUTH, served

from credit_risk import scoring
from credit_risk.schema import FEATURES, LoanApplication
from ops import processes
from ops.nginx import Nginx, find_nginx, render
from ops.release import shadow
from ops.release.environment import CANARY_TEMPLATE
from training import data

REQUESTS = 150           # per measurement; p99 of 150 is the second slowest
SLOW_CANDIDATE_S = 5     # far beyond the copy's timeout
NOISE_MS = 200           # what two shared, busy cores add to a p99 between two clients
TIMEOUT_MS = shadow.ShadowPolicy().timeout_ms
MARKER = "CANDIDATE-ONLY"  # in every byte a stand-in candidate sends


class StandInCandidate:
    """A candidate that is slow or failing: a small HTTP server on a loopback port, in a
    thread of the test. Every answer carries MARKER in its body and a header, so a leak to
    the client would show."""

    def __init__(self, mode: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if mode == "slow":
                    time.sleep(SLOW_CANDIDATE_S)  # the fault: an answer that takes seconds
                status = 500 if mode == "failing" else 200
                body = json.dumps({"probability_of_default": 0.999, "decision": "decline",
                                   "model_version": MARKER, "request_id": MARKER}).encode()
                # One write: headers and body in separate small writes would meet Nagle's
                # algorithm and delayed ACKs, 40 ms per answer that is not the candidate's.
                self.wfile.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                    f"x-candidate: {MARKER}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                    + body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((processes.HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.upstream = f"{processes.HOST}:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Client:
    """One client of one front (nginx) URL: statuses, answers, leaks of the marker, ms."""

    def __init__(self, url: str, keep_alive: bool = True) -> None:
        limits = httpx.Limits(max_keepalive_connections=None if keep_alive else 0)
        self.url = url
        self.http = httpx.Client(timeout=30, headers=AUTH, limits=limits)
        self.statuses, self.answers, self.leaks, self.ms = [], [], 0, []

    def send(self, application: dict) -> None:
        started = time.perf_counter()
        try:
            response = self.http.post(f"{self.url}/score", json=application)
        except httpx.HTTPError as error:
            self.statuses.append(repr(error))
            return
        self.ms.append((time.perf_counter() - started) * 1000)
        self.statuses.append(response.status_code)
        self.leaks += MARKER in response.content.decode() + json.dumps(dict(response.headers))
        answer = response.json()
        answer.pop("request_id", None)  # a fresh id per answer
        self.answers.append(answer)

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.ms, n=100, method="inclusive")[q - 1]


def measure(clients: dict[str, Client], applications: list[dict]) -> dict[str, Client]:
    """Send each application through every client in turn, so a busy moment of the shared
    machine falls on all of them alike rather than on one run."""
    try:
        for application in applications:
            for client in clients.values():
                client.send(application)
    finally:
        for client in clients.values():
            client.http.close()
    return clients


@pytest.fixture(scope="module")
def production(trained, tmp_path_factory):
    """One real `bentoml serve` of the trained model, answer cache off (a second pass over
    the same applications must cost what the first did), prediction log in a temp folder."""
    require(find_nginx() is not None, "nginx is not installed (apt-get install nginx)")
    logs = tmp_path_factory.mktemp("production-logs")
    with served(CREDIT_RISK_CACHE_ENTRIES="0", CREDIT_RISK_LOG_DIR=str(logs)) as url:
        yield url


@pytest.fixture(scope="module")
def applications() -> list[dict]:
    return data.generate(REQUESTS, seed=77)[FEATURES].to_dict("records")


def baseline_nginx(production: str, run_dir) -> Nginx:
    """Production's nginx without a shadow: the canary template with production alone, as
    the release process runs it between stages."""
    run_dir.mkdir()
    port = processes.free_port()
    conf = render(CANARY_TEMPLATE, run_dir / "nginx.conf", RUN_DIR=str(run_dir), PORT=str(port),
                  UPSTREAMS=f"        server {production.removeprefix('http://')} weight=100;",
                  GENERATION="1")
    return Nginx(conf, run_dir, port).start()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", ["stopped", "slow", "failing"])
def test_a_faulty_shadow_candidate_never_harms_production(fault, production, applications,
                                                          tmp_path):
    version = httpx.post(f"{production}/score", json=applications[0], headers=AUTH,
                         timeout=10).json()["model_version"]
    candidate = None if fault == "stopped" else StandInCandidate(fault)
    # "stopped": a loopback port nobody listens on (free a moment ago), connection refused.
    upstream = candidate.upstream if candidate else f"127.0.0.1:{processes.free_port()}"
    nginx = None
    try:
        nginx = baseline_nginx(production, tmp_path / "baseline")
        with shadow.ShadowProxy(production.removeprefix("http://"), upstream,
                                TIMEOUT_MS, tmp_path / "shadow") as proxy:
            clients = measure({"without": Client(f"http://127.0.0.1:{nginx.port}"),
                               "with": Client(proxy.url),
                               "fresh": Client(proxy.url, keep_alive=False)}, applications)
            # Every copy was sent and logged; a copy's fate is in shadow.log, not the client's.
            processes.wait_until(
                lambda: len(shadow.read_log(proxy.shadow_log, "/_shadow")) >= 2 * REQUESTS,
                TIMEOUT_MS / 1000 + 10, "nginx to log every mirrored copy")
            copies = shadow.read_log(proxy.shadow_log, "/_shadow")
    finally:
        if nginx:
            nginx.stop()
        if candidate:
            candidate.stop()

    without, with_shadow, fresh = clients["without"], clients["with"], clients["fresh"]
    report = (f"{fault}: p50/p99 without shadow {without.percentile(50):.1f}/"
              f"{without.percentile(99):.1f} ms, with {with_shadow.percentile(50):.1f}/"
              f"{with_shadow.percentile(99):.1f} ms, with and a new connection per request "
              f"{fresh.percentile(50):.1f}/{fresh.percentile(99):.1f} ms")
    print(f"\n{report}")
    # Production's answers, exactly, and nothing of the candidate's.
    for client in (with_shadow, fresh):
        assert client.statuses == [200] * REQUESTS, report
        assert client.answers == without.answers
        assert client.leaks == 0
    assert {a["model_version"] for a in with_shadow.answers} == {version}
    # The copies did meet the fault (so the test tested something).
    expected_status = {"stopped": "502", "slow": "504", "failing": "500"}[fault]
    assert [c["status"] for c in copies] == [expected_status] * 2 * REQUESTS
    # The bound: production's p99 plus at most one copy's timeout, plus machine noise.
    assert with_shadow.percentile(99) <= without.percentile(99) + TIMEOUT_MS + NOISE_MS, report
    # A client that does not reuse its connection pays nothing, whatever the candidate does.
    assert fresh.percentile(99) <= without.percentile(99) + NOISE_MS, report
    if fault == "slow":
        # The keep-alive cost is real: each next request waited for the copy's timeout, less
        # the time the two other clients took in between.
        assert with_shadow.percentile(50) >= TIMEOUT_MS / 2, report


@pytest.mark.timeout(400)
def test_the_stage_pairs_every_mirrored_answer_with_productions(trained, production,
                                                                tmp_path):
    import train

    other, _ = train.run(seed=1)  # a candidate: the same recipe on another snapshot
    production_model = scoring.load(str(trained[0].tag))
    candidate_logs = tmp_path / "candidate-logs"
    policy = shadow.ShadowPolicy(requests=250, min_pairs=200)
    with served(CREDIT_RISK_MODEL=str(other.tag), CREDIT_RISK_CACHE_ENTRIES="0",
                CREDIT_RISK_LOG_DIR=str(candidate_logs)) as candidate_url, \
            shadow.ShadowProxy(production.removeprefix("http://"),
                               candidate_url.removeprefix("http://"), policy.timeout_ms,
                               tmp_path / "shadow") as proxy:
        applications = data.generate(policy.requests, seed=4242)[FEATURES].to_dict("records")
        result = shadow.shadow(proxy.url, proxy.access_log, proxy.shadow_log, candidate_logs,
                               policy, applications, headers=AUTH)
        served_ids = [a["request_id"] for a in shadow.read_log(proxy.access_log, "/score")]
        copied_ids = [a["request_id"] for a in shadow.read_log(proxy.shadow_log, "/_shadow")]

    evidence = result.evidence
    print(f"\nshadow stage: {json.dumps(result.log_entry())[:1500]}")
    assert all(r["status"] == 200 for r in result.records)
    assert evidence["requests"] == evidence["mirrored"] == evidence["pairs"] == policy.requests
    assert evidence["versions"] == {"production": [production_model.version],
                                    "candidate": [other.tag.version]}
    # nginx gave each request one id and sent it with the copy too.
    assert sorted(copied_ids) == sorted(served_ids) and len(set(served_ids)) == policy.requests
    # The evidence is what the two models decide here, in process, on the same applications.
    validated = [LoanApplication(**a) for a in applications]
    here = {name: [s.decision for s in scoring.score(model, validated)]
            for name, model in [("production", production_model),
                                ("candidate", scoring.load(str(other.tag)))]}
    differ = sum(p != c for p, c in zip(here["production"], here["candidate"], strict=True))
    assert evidence["disagreement"]["count"] == differ
    declines = sum(c == "decline" for c in here["candidate"]) / policy.requests
    assert evidence["decline_rate"]["overall"]["candidate"] == round(declines, 4)
    assert result.passed == (result.reasons == [])
    json.dumps(result.log_entry())  # the deployment log can carry it
