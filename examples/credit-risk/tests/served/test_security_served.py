"""Security controls against a real `bentoml serve` with tight limits, whose server and
audit logs are searched for the keys."""

import asyncio
import json
import math
import os
import socket
import time

import httpx
import pytest
from checks import assert_json_error, poll
from servers import failed_start, served

from credit_risk import api_keys as keys
from credit_risk.middleware import audit
from credit_risk.schema import EXAMPLE_INPUT


@pytest.fixture
def body() -> dict:
    return EXAMPLE_INPUT.model_dump()


@pytest.mark.timeout(120)
def test_serve_without_keys_stops_at_start_with_one_line(trained, tmp_path):
    returncode, output = failed_start(tmp_path / "serve.log",
                                      CREDIT_RISK_API_KEYS_FILE=str(tmp_path / "none.jsonl"))
    assert returncode != 0
    assert "credit-risk service not started: no API keys in" in output
    assert "Traceback" not in output


# --- a real server with tight limits --------------------------------------------------------

SERVED_RATE_PER_S, SERVED_BURST, SERVED_TIMEOUT_S = 2, 5, 2
# One key per test, so that no test spends another's rate limit.
SERVED_KEYS = {"caller": ["score"], "burst": ["score"], "bystander": ["score"],
               "sizer": ["score"], "staller": ["score"], "dashboard": ["metrics"]}


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """A real server with its own keys, a rate of 2/s (burst 5) and a 2 s timeout; yields
    (url, {key id: key}, folder with serve.log and the audit log)."""
    folder = tmp_path_factory.mktemp("secured")
    minted = {key_id: keys.new(folder / "api-keys.jsonl", key_id, scopes)
              for key_id, scopes in SERVED_KEYS.items()}
    env = {"CREDIT_RISK_API_KEYS_FILE": str(folder / "api-keys.jsonl"),
           "CREDIT_RISK_LOG_DIR": str(folder / "logs"),
           "CREDIT_RISK_RATE_LIMIT_PER_S": str(SERVED_RATE_PER_S),
           "CREDIT_RISK_RATE_BURST": str(SERVED_BURST),
           "BENTOML_CONFIG_OPTIONS":
               f"services.credit_risk_service.traffic.timeout={SERVED_TIMEOUT_S}"}
    with served(log=folder / "serve.log", **env) as url:
        yield url, minted, folder


def as_(key: str) -> dict:
    return {"X-API-Key": key}


@pytest.mark.timeout(180)
def test_served_keys_scopes_and_the_metrics_policy(server, body):
    url, minted, _ = server
    assert_json_error(httpx.post(f"{url}/score", json=body, timeout=10), 401)
    assert_json_error(httpx.post(f"{url}/score", json=body, timeout=10,
                                 headers=as_(minted["dashboard"])), 403)
    assert httpx.post(f"{url}/score", json=body, timeout=10,
                      headers=as_(minted["caller"])).status_code == 200
    metrics = httpx.get(f"{url}/metrics", timeout=10)  # from loopback: open
    assert metrics.status_code == 200
    for reason in ["unauthenticated", "forbidden"]:
        assert (f'credit_risk_refused_requests_total{{endpoint="/score",reason="{reason}"}} 1.0'
                in metrics.text)


async def burst(url: str, key: str, body: dict, n: int) -> tuple[list, float]:
    async with httpx.AsyncClient(timeout=10, headers=as_(key)) as client:
        started = time.monotonic()
        responses = await asyncio.gather(*(client.post(f"{url}/score", json=body)
                                           for _ in range(n)))
        return responses, time.monotonic() - started


@pytest.mark.timeout(180)
def test_served_rate_limit_under_a_burst_and_recovery(server, body):
    url, minted, _ = server
    n = 40
    responses, elapsed = asyncio.run(burst(url, minted["burst"], body, n))
    statuses = [r.status_code for r in responses]
    allowed = statuses.count(200)
    # At most the burst plus what refilled while the burst was answered.
    expected_max = SERVED_BURST + math.floor(SERVED_RATE_PER_S * elapsed)
    print(f"\nrate limit: {allowed} of {n} allowed in {elapsed:.2f} s; "
          f"burst {SERVED_BURST} + {SERVED_RATE_PER_S}/s allows {SERVED_BURST} to {expected_max}")
    assert set(statuses) == {200, 429}
    assert SERVED_BURST <= allowed <= expected_max
    for response in responses:
        if response.status_code == 429:
            assert_json_error(response, 429)
            assert 1 <= int(response.headers["retry-after"]) <= math.ceil(1 / SERVED_RATE_PER_S)
    # Another key is not affected, and the limited one is served again after Retry-After.
    assert httpx.post(f"{url}/score", json=body, timeout=10,
                      headers=as_(minted["bystander"])).status_code == 200
    poll(lambda: httpx.post(f"{url}/score", json=body, timeout=10,
                            headers=as_(minted["burst"])).status_code,
         until=lambda status: status == 200, deadline_s=1 / SERVED_RATE_PER_S + 2)


@pytest.mark.timeout(180)
def test_served_body_limit_announced_or_chunked(server, body):
    url, minted, _ = server
    big = json.dumps({"applications": [body] * 5000}).encode()
    headers = {**as_(minted["sizer"]), "content-type": "application/json"}
    announced = httpx.post(f"{url}/score_batch", content=big, headers=headers, timeout=10)
    assert_json_error(announced, 413)
    chunks = iter([big[i:i + 65536] for i in range(0, len(big), 65536)])
    chunked = httpx.post(f"{url}/score_batch", content=chunks, headers=headers, timeout=10)
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert_json_error(chunked, 413)
    assert httpx.post(f"{url}/score_batch", json={"applications": [body]}, timeout=10,
                      headers=as_(minted["sizer"])).status_code == 200


@pytest.mark.timeout(180)
def test_served_a_stalled_request_gets_a_504_while_others_are_served(server, body):
    url, minted, _ = server
    port = int(url.rpartition(":")[2])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=SERVED_TIMEOUT_S + 10) as slow:
        # Headers and the first bytes of a body that never arrives in full.
        slow.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-API-Key: " + minted["staller"].encode() + b"\r\n"
                     b"Content-Length: 300\r\n\r\n{\"annual_income\": ")
        assert httpx.post(f"{url}/score", json=body, timeout=10,
                          headers=as_(minted["staller"])).status_code == 200
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = slow.recv(4096)
            if not chunk:
                break
            answer += chunk
    waited = time.monotonic() - started
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 504"), answer
    assert set(json.loads(payload)) == {"error"}
    assert SERVED_TIMEOUT_S <= waited < SERVED_TIMEOUT_S + 5


@pytest.mark.timeout(180)
def test_served_keys_never_reach_the_logs(server, body):
    """Runs after the tests above: every key was sent, valid or not, by then."""
    url, minted, folder = server
    httpx.post(f"{url}/score", json={**body, "purpose": "yacht"}, timeout=10,
               headers=as_(minted["caller"]))  # a rejection, logged as a warning
    poll(lambda: audit.read_audit_log(folder / "logs"), until=lambda lines: len(lines) >= 10)
    texts = {path.name: path.read_text() for path in folder.rglob("*")
             if path.is_file() and path.name != "api-keys.jsonl"}
    assert "serve.log" in texts and any(name.startswith("audit.") for name in texts)
    for key_id, key in minted.items():
        secret = key.split("_", 2)[2]
        for name, text in texts.items():
            assert secret not in text, f"key {key_id} found in {name}"
    key_ids = {line["key_id"] for line in audit.read_audit_log(folder / "logs")}
    assert set(SERVED_KEYS) | {None} <= key_ids
    assert os.environ["CREDIT_RISK_API_KEY"] not in texts["serve.log"]
