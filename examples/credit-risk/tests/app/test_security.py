"""Security controls on the request path: each refusal, and a valid request served after it.

In process (the service's ASGI app behind Starlette's TestClient, or a middleware around a
stand-in app where a setting must differ from the session's app), then against a real
`bentoml serve` with tight limits, whose server and audit logs are searched for the keys.
"""

import json
import subprocess
import sys

import httpx
import pytest
from checks import assert_json_error, poll
from prometheus_client import REGISTRY
from servers import AUTH
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from credit_risk import api_keys as keys
from credit_risk.middleware import audit, auth, limits
from credit_risk.schema import EXAMPLE_INPUT, MAX_APPLICATIONS_PER_REQUEST
from credit_risk.settings import Settings
from ops.processes import EXAMPLE_DIR


def without_key(client, method: str, url: str, **kwargs) -> httpx.Response:
    """Send a request without the X-API-Key header the client adds to every request."""
    request = client.build_request(method, url, **kwargs)
    del request.headers["X-API-Key"]
    return client.send(request)


def refused(endpoint: str, reason: str) -> float:
    labels = {"endpoint": endpoint, "reason": reason}
    return REGISTRY.get_sample_value("credit_risk_refused_requests_total", labels) or 0


KEYS_FILE = Settings.from_env().keys_file  # the tests' keys file (conftest.py)


@pytest.fixture
def body() -> dict:
    return EXAMPLE_INPUT.model_dump()


@pytest.fixture
def mint():
    """Mint a key into the tests' keys file; revoke it after the test."""
    minted = []

    def new(key_id: str, scopes: list[str]) -> str:
        minted.append(key_id)
        return keys.new(KEYS_FILE, key_id, scopes)

    yield new
    for key_id in minted:
        keys.revoke(KEYS_FILE, key_id)


# --- API keys: the file and the CLI ---------------------------------------------------------

def test_the_keys_file_holds_hashes_never_keys(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    key = keys.new(path, "partner-a", ["score"])
    (line,) = path.read_text().splitlines()
    record = json.loads(line)
    assert key.startswith("crk_partner-a_") and len(key) > 50
    assert key not in line and key.split("_", 2)[2] not in line
    assert record["sha256"] == keys.digest(key) and record["scopes"] == ["score"]
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    records = keys.read(path)
    assert keys.verify(records, key).key_id == "partner-a"
    for wrong in [key[:-1] + ("A" if key[-1] != "A" else "B"), "crk_nobody_" + "x" * 43, "",
                  "no-prefix", key + "x"]:
        assert keys.verify(records, wrong) is None


def test_the_cli_prints_a_key_once_and_lists_and_revokes_without_it(tmp_path):
    path = tmp_path / "api-keys.jsonl"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "ops.api_keys", "--file", str(path), *args],
                              cwd=EXAMPLE_DIR, capture_output=True, text=True, timeout=60)

    minted = cli("new", "--id", "partner-b", "--scope", "score", "--scope", "metrics")
    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.strip()
    assert keys.verify(keys.read(path), key).scopes == {"score", "metrics"}
    assert "not shown again" in minted.stderr and key not in minted.stderr
    listed = cli("list")
    assert listed.stdout == "partner-b metrics,score\n" and key not in listed.stdout
    assert cli("new", "--id", "partner-b", "--scope", "score").returncode == 1  # ids are unique
    assert cli("revoke", "--id", "partner-b").returncode == 0
    assert keys.read(path) == {}


# --- fail closed ----------------------------------------------------------------------------

def test_no_keys_and_no_anonymous_flag_is_refused_with_instructions(tmp_path):
    with pytest.raises(auth.NoKeysConfigured) as error:
        auth.configured(tmp_path / "missing.jsonl", anonymous=False)
    message = str(error.value)
    assert "\n" not in message
    assert "python -m ops.api_keys new" in message and "CREDIT_RISK_ALLOW_ANONYMOUS" in message


def test_anonymous_mode_warns_and_still_checks_a_key_that_is_sent(tmp_path, caplog):
    client = TestClient(stand_in([Middleware(auth.RequireApiKey, **key_check(
        tmp_path / "missing.jsonl", anonymous=True))]))
    with caplog.at_level("WARNING", logger="credit_risk.auth"):
        assert client.post("/score").status_code == 200  # the app is built on first use
    assert "model routes are unauthenticated" in caplog.text
    assert client.post("/score", headers={"X-API-Key": "crk_x_wrong"}).status_code == 401


# --- authentication and scopes, in process --------------------------------------------------

def test_no_or_unknown_key_is_a_json_401_and_a_valid_key_is_served(client, body):
    before = refused("/score", "unauthenticated")
    responses = [without_key(client, "POST", "/score", json=body)] + [
        client.post("/score", json=body, headers={"X-API-Key": bad})
        for bad in ["", "crk_tests_" + "A" * 43, "not-a-key", AUTH["X-API-Key"][:-2]]]
    for response in responses:
        assert_json_error(response, 401)
        assert response.headers["www-authenticate"].startswith("ApiKey")
    assert refused("/score", "unauthenticated") == before + len(responses)
    assert client.post("/score", json=body).status_code == 200


def test_a_key_without_the_scope_is_a_json_403(client, body, mint):
    metrics_only = mint("dashboard", ["metrics"])
    before = refused("/score_batch", "forbidden")
    response = poll(lambda: client.post("/score_batch", json={"applications": [body]},
                                        headers={"X-API-Key": metrics_only}),
                    until=lambda r: r.status_code != 401)  # the keys file is re-read
    assert_json_error(response, 403)
    assert "score" in response.json()["error"]
    assert refused("/score_batch", "forbidden") == before + 1
    assert client.post("/score_batch", json={"applications": [body]}).status_code == 200


def test_a_new_key_works_and_a_revoked_key_stops_without_a_restart(client, body):
    key = keys.new(KEYS_FILE, "short-lived", ["score"])
    try:
        poll(lambda: client.post("/score", json=body, headers={"X-API-Key": key}),
             until=lambda r: r.status_code == 200)
    finally:
        keys.revoke(KEYS_FILE, "short-lived")
    poll(lambda: client.post("/score", json=body, headers={"X-API-Key": key}),
         until=lambda r: r.status_code == 401)
    assert client.post("/score", json=body).status_code == 200


def test_health_and_the_api_contract_are_open(client):
    for path in ["/livez", "/readyz", "/docs.json"]:
        assert without_key(client, "GET", path).status_code == 200, path


def test_unknown_paths_need_a_key_before_they_say_whether_they_exist(client):
    assert_json_error(without_key(client, "GET", "/admin"), 401)
    assert client.get("/admin").status_code == 404


def key_check(keys_file, anonymous: bool = False) -> dict:
    """RequireApiKey's arguments, as service.py passes them from the settings."""
    return {"keys_file": keys_file, "anonymous": anonymous,
            "metrics_networks": Settings().networks}


def stand_in(middleware: list) -> Starlette:
    """A tiny app with the service's route names, for settings the session's app lacks."""
    async def ok(request):
        return JSONResponse({"ok": True})

    async def metrics(request):
        return PlainTextResponse("metric 1\n")

    return Starlette(routes=[Route("/score", ok, methods=["POST"]),
                             Route("/metrics", metrics), Route("/livez", ok)],
                     middleware=middleware)


def test_metrics_are_open_to_loopback_and_need_the_metrics_scope_elsewhere(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    scorer, watcher = (keys.new(path, "scorer", ["score"]), keys.new(path, "watcher", ["metrics"]))
    app = stand_in([Middleware(auth.RequireApiKey, **key_check(path))])
    local = TestClient(app, client=("127.0.0.1", 40000))
    remote = TestClient(app, client=("203.0.113.9", 40000))
    assert local.get("/metrics").status_code == 200
    assert_json_error(remote.get("/metrics"), 401)
    assert_json_error(remote.get("/metrics", headers={"X-API-Key": scorer}), 403)
    assert remote.get("/metrics", headers={"X-API-Key": watcher}).status_code == 200
    assert remote.get("/livez").status_code == 200
    # Forwarded headers are the client's word, not its address:
    spoofed = remote.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert_json_error(spoofed, 401)


# --- limits, in process ---------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate():
    clock = FakeClock()
    bucket = limits.TokenBucket(rate_per_s=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == pytest.approx(0.5)  # one token comes every 0.5 s
    clock.now += 0.5
    assert bucket.take() == 0
    clock.now += 100  # an idle key saves up only to the burst
    assert sum(bucket.take() == 0 for _ in range(10)) == 3


def test_rate_limit_is_a_429_with_retry_after_per_key_and_recovers(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    busy, quiet = keys.new(path, "busy", ["score"]), keys.new(path, "quiet", ["score"])
    clock = FakeClock()
    client = TestClient(stand_in([
        Middleware(auth.RequireApiKey, **key_check(path)),
        Middleware(limits.RateLimitPerKey, rate_per_s=0.5, burst=2, clock=clock)]))
    before = refused("/score", "rate_limited")
    statuses = [client.post("/score", headers={"X-API-Key": busy}).status_code
                for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    limited = client.post("/score", headers={"X-API-Key": busy})
    assert_json_error(limited, 429)
    assert limited.headers["retry-after"] == "2"  # a token every 2 s, rounded up
    assert refused("/score", "rate_limited") == before + 4
    assert client.post("/score", headers={"X-API-Key": quiet}).status_code == 200
    assert client.get("/livez").status_code == 200
    clock.now += int(limited.headers["retry-after"])
    assert client.post("/score", headers={"X-API-Key": busy}).status_code == 200


def test_a_body_over_the_limit_is_a_413_announced_or_chunked(client, body, service):
    big = json.dumps({"applications": [body] * 5000}).encode()  # about 1.3 MB
    assert len(big) > service.SETTINGS.max_body_bytes
    before = refused("/score_batch", "too_large")
    announced = client.post("/score_batch", content=big,
                            headers={"content-type": "application/json"})
    assert_json_error(announced, 413)
    chunked = client.post("/score_batch", content=iter([big[i:i + 65536] for i in
                                                        range(0, len(big), 65536)]),
                          headers={"content-type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert_json_error(chunked, 413)
    assert refused("/score_batch", "too_large") == before + 2
    full_batch = {"applications": [body] * MAX_APPLICATIONS_PER_REQUEST}
    assert len(json.dumps(full_batch)) < service.SETTINGS.max_body_bytes
    assert client.post("/score_batch", json=full_batch).status_code == 200


def test_bodies_other_than_json_are_a_415(client, body):
    before = refused("/score", "unsupported_media_type")
    for media_type in ["multipart/form-data", "application/x-www-form-urlencoded",
                       "application/vnd.bentoml+pickle", "text/plain"]:
        answer = client.post("/score", content=json.dumps(body),
                             headers={"content-type": media_type})
        assert_json_error(answer, 415)
    assert refused("/score", "unsupported_media_type") == before + 4
    assert client.post("/score", content=json.dumps(body),
                       headers={"content-type": "application/json; charset=utf-8"}
                       ).status_code == 200


def test_a_batch_over_the_maximum_length_is_a_400_and_the_maximum_is_served(client, body):
    too_long = client.post("/score_batch",
                           json={"applications": [body] * (MAX_APPLICATIONS_PER_REQUEST + 1)})
    assert too_long.status_code == 400
    assert too_long.json()["detail"][0]["type"] == "too_long"
    assert client.post("/score_batch",
                       json={"applications": [body] * MAX_APPLICATIONS_PER_REQUEST}
                       ).status_code == 200


def test_the_service_times_out_requests_after_ten_seconds(service):
    # BentoML's traffic.timeout answers 504 JSON; a real stalled request is timed out in
    # tests/served/test_security_served.py.
    assert service.CreditRisk.config["traffic"]["timeout"] == 10


# --- input validation and output hardening --------------------------------------------------

PERSONAL = {"annual_income": "123-45-6789", "purpose": "Jane Doe, 1 Main St"}


def test_error_bodies_echo_no_client_values_or_internals(client, body):
    answers = [client.post("/score", json={**body, **PERSONAL}),
               client.post("/score", json={**body, "note": "Jane Doe, 1 Main St"}),
               client.post("/score", content=b'{"annual_income": 123-45-6789',
                           headers={"content-type": "application/json"})]
    for answer in answers:
        assert answer.status_code == 400
        for secret in ["123-45-6789", "Jane Doe", "Traceback", str(EXAMPLE_DIR), "site-packages",
                       AUTH["X-API-Key"]]:
            assert secret not in answer.text, (secret, answer.text)


def test_answers_carry_only_the_decision_rounded_probability_version_and_id(client, body):
    answer = client.post("/score", json=body)
    assert set(answer.json()) == {"probability_of_default", "decision", "model_version",
                                  "request_id", "reasons"}
    probability = answer.json()["probability_of_default"]
    assert probability == round(probability, 3)
    assert "x-api-key" not in answer.headers


def test_invalid_inputs_are_counted_by_field_and_reason(client, body):
    labels = {"endpoint": "/score", "field": "annual_income", "reason": "float_type"}

    def count():
        return REGISTRY.get_sample_value("credit_risk_rejected_inputs_total", labels) or 0

    before = count()
    client.post("/score", json={**body, **PERSONAL})
    assert count() == before + 1
    assert client.post("/score", json=body).status_code == 200


# --- the audit log, in process --------------------------------------------------------------

def test_each_scoring_request_is_audited_with_key_id_and_outcome_but_no_data(client, body,
                                                                            trained, service):
    answer = client.post("/score", json=body).json()
    scored = audit.read_audit_log(service.SETTINGS.logs)[-1]
    without_key(client, "POST", "/score_batch", json={"applications": [body]})
    refusal = audit.read_audit_log(service.SETTINGS.logs)[-1]
    fields = {"time", "key_id", "endpoint", "model_version", "status", "request_ids"}
    assert set(scored) == set(refusal) == fields
    assert scored["key_id"] == "tests" and scored["status"] == 200
    assert scored["request_ids"] == [answer["request_id"]]
    assert scored["model_version"] == trained[0].tag.version
    assert scored["time"].endswith("+00:00")
    assert (refusal["key_id"], refusal["endpoint"], refusal["status"]) == (None, "/score_batch",
                                                                          401)
    assert refusal["request_ids"] == []
    assert AUTH["X-API-Key"] not in (service.SETTINGS.logs / "audit.0.jsonl").read_text()
