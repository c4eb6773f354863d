"""Scaling behaviour on a real server: concurrent requests batched, overload shed with 503."""

import asyncio

import httpx
import pytest
from checks import applications, post_all, samples
from servers import AUTH, served

from credit_risk import scoring
from credit_risk.schema import EXAMPLE_INPUT

# --- a real server under load ------------------------------------------------------------

@pytest.mark.timeout(180)
def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(trained, service):
    requests = applications(256)
    with served(CREDIT_RISK_MICRO_BATCH_SIZE="8", CREDIT_RISK_CACHE_ENTRIES="0") as url:
        responses = asyncio.run(post_all(f"{url}/score", [r.model_dump() for r in requests],
                                         concurrency=32))
        batches = samples(url, "credit_risk_batch_size")
    assert [r.status_code for r in responses] == [200] * len(requests)
    expected = scoring.score(service.MODEL, requests)
    assert [r.json()["probability_of_default"] for r in responses] == [
        e.probability_of_default for e in expected]
    calls = batches[("credit_risk_batch_size_count", ())]
    singles = batches[("credit_risk_batch_size_bucket", (("le", "1.0"),))]
    up_to_max = batches[("credit_risk_batch_size_bucket", (("le", "8.0"),))]
    assert batches[("credit_risk_batch_size_sum", ())] == len(requests)
    assert singles < calls, "no model call took more than one application"
    assert up_to_max == calls, "a batch was larger than CREDIT_RISK_MICRO_BATCH_SIZE"


@pytest.mark.timeout(180)
def test_overload_gets_a_quick_json_503_and_the_service_recovers(trained, service):
    body = EXAMPLE_INPUT.model_dump()
    with served(CREDIT_RISK_MAX_IN_FLIGHT="4", CREDIT_RISK_CACHE_ENTRIES="0") as url:
        responses = asyncio.run(post_all(f"{url}/score", [body] * 200, concurrency=100))
        statuses = [r.status_code for r in responses]
        shed = [r for r in responses if r.status_code == 503]
        assert set(statuses) == {200, 503}, statuses
        assert shed, "100 concurrent clients never exceeded 4 requests in flight"
        for response in shed:
            assert response.json() == {"error": "The service is overloaded; retry shortly."}
            assert response.headers["retry-after"] == "1"
        assert samples(url, "credit_risk_shed_requests")[
            ("credit_risk_shed_requests_total", (("endpoint", "/score"),))] == len(shed)
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        recovered = httpx.post(f"{url}/score", json=body, timeout=10, headers=AUTH)
        assert recovered.status_code == 200, recovered.text
