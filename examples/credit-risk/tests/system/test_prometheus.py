"""End to end: the real service and Pushgateway, scraped by a real Prometheus on loopback.

Checks that the built-in and custom metrics arrive, that the drift job's results arrive
through the Pushgateway, that the alert rules load, and that every PromQL expression in the
dashboard and the runbook evaluates without error. Needs Debian's prometheus and
prometheus-pushgateway packages; outside CI a missing one skips with the reason.
"""

import json
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import yaml
from conftest import require
from servers import AUTH, START_DEADLINE_S

from credit_risk import schema
from ops.processes import (
    EXAMPLE_DIR,
    answers,
    bentoml_serve,
    free_port,
    stop,
    wait_until,
    wait_until_ready,
)
from training import data

pytestmark = pytest.mark.timeout(300)
MONITORING = EXAMPLE_DIR / "monitoring"


def tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (apt-get install {name})")
    return path


def start(command: list, ready_url: str, deadline_s: float = 30) -> subprocess.Popen:
    """Start a server in its own process group; poll ready_url until it answers 200."""
    process = subprocess.Popen([str(part) for part in command], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: answers(ready_url), deadline_s, ready_url,
                   alive=lambda: process.poll() is None)
    except BaseException:
        stop(process)
        raise
    return process


@pytest.fixture(scope="module")
def stack(trained, tmp_path_factory):
    """Service, Pushgateway and Prometheus on free loopback ports; yields their URLs."""
    prometheus, pushgateway = tool("prometheus"), tool("prometheus-pushgateway")
    folder = tmp_path_factory.mktemp("prometheus")
    ports = {name: free_port() for name in ("service", "pushgateway", "prometheus")}
    gateway_flags = [f"--web.listen-address=127.0.0.1:{ports['pushgateway']}",
                     f"--persistence.file={folder / 'pushgateway.data'}"]
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(MONITORING / "alerts.yml")]
    for job, port in [("credit-risk", ports["service"]), ("pushgateway", ports["pushgateway"])]:
        scrape = next(s for s in config["scrape_configs"] if s["job_name"] == job)
        scrape["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))

    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    processes = []
    try:
        processes.append(bentoml_serve(ports["service"], folder / "serve.log"))
        wait_until_ready(urls["service"], processes[-1], START_DEADLINE_S)
        processes.append(start([pushgateway, *gateway_flags], f"{urls['pushgateway']}/-/ready"))
        processes.append(start([prometheus, f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}",
                                f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
                               f"{urls['prometheus']}/-/ready"))
        yield urls
    finally:
        for process in reversed(processes):
            stop(process)


def query(prometheus_url: str, promql: str) -> list:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
    body = response.json()
    assert body["status"] == "success", f"{promql}: {body.get('error')}"
    return body["data"]["result"]


def poll(prometheus_url: str, promql: str, deadline_s: float = 30) -> list:
    deadline = time.monotonic() + deadline_s
    while not (result := query(prometheus_url, promql)):
        assert time.monotonic() < deadline, f"no data for {promql} after {deadline_s}s"
        time.sleep(0.2)
    return result


@pytest.fixture(scope="module")
def traffic(stack, service):
    """Send 3 invalid applications and score 200; return the seconds from the last request
    until Prometheus answered a query over all of them (scrape interval 1 s)."""
    rows = data.generate(200, seed=8)[schema.FEATURES].to_dict("records")
    for bad in [{"purpose": "yacht"}, {"annual_income": -1}, {"term_months": 13}]:
        httpx.post(f"{stack['service']}/score", json={**rows[0], **bad}, timeout=10,
                   headers=AUTH)
    for start_row in range(0, 200, 50):
        httpx.post(f"{stack['service']}/score_batch", timeout=10, headers=AUTH,
                   json={"applications": rows[start_row:start_row + 50]}).raise_for_status()
    sent = time.monotonic()
    poll(stack["prometheus"], "sum(credit_risk_decisions_total) >= 200")
    return time.monotonic() - sent


def test_builtin_and_custom_metrics_arrive(stack, traffic, trained):
    print(f"scrape-to-query latency: {traffic:.2f} s")
    prometheus = stack["prometheus"]
    assert poll(prometheus, 'bentoml_service_request_total{job="credit-risk",'
                            'endpoint="/score_batch",http_response_code="200"} >= 4')
    assert poll(prometheus, 'sum(credit_risk_rejected_inputs_total{endpoint="/score"}) >= 3')
    assert poll(prometheus, "credit_risk_probability_of_default_count >= 200")
    (info,) = poll(prometheus, "credit_risk_model_info")
    assert info["metric"]["model_version"] == trained[0].tag.version
    assert poll(prometheus, "credit_risk_expected_decline_rate > 0")
    (trained_at,) = poll(prometheus, "credit_risk_model_trained_timestamp_seconds")
    assert float(trained_at["value"][1]) == trained[0].info.creation_time.timestamp()


def test_drift_job_results_arrive_through_the_pushgateway(stack, traffic, trained, tmp_path):
    gateway = stack["pushgateway"].removeprefix("http://")
    result = subprocess.run(
        [sys.executable, "-m", "ops.drift", "--model", str(trained[0].tag),
         "--pushgateway", gateway, "--out", str(tmp_path)],
        cwd=EXAMPLE_DIR, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    scores = poll(stack["prometheus"], 'credit_risk_feature_drift_score{job="credit_risk_drift"}')
    assert {s["metric"]["feature"] for s in scores} == set(schema.FEATURES)
    assert poll(stack["prometheus"], "credit_risk_drifted_feature_share")
    assert poll(stack["prometheus"], 'time() - push_time_seconds{job="credit_risk_drift"} < 300')


def test_alert_rules_load_and_are_healthy(stack):
    groups = httpx.get(f"{stack['prometheus']}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    written = [rule for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
               for rule in group["rules"]]
    assert len(rules) == len(written) and all(rule["health"] != "err" for rule in rules), rules


def dashboard_queries() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def runbook_queries() -> list[str]:
    runbook = (EXAMPLE_DIR / "RUNBOOK.md").read_text()
    return [block.strip() for block in re.findall(r"```promql\n(.*?)```", runbook, re.S)]


@pytest.mark.parametrize("source", ["dashboard", "runbook"])
def test_every_dashboard_and_runbook_query_evaluates(stack, traffic, source):
    queries = dashboard_queries() if source == "dashboard" else runbook_queries()
    assert queries
    for promql in queries:
        query(stack["prometheus"], promql)  # raises with the query on any error
