"""Scaling behaviour: the batcher, the prediction cache and overload shedding, for real."""

import asyncio

import httpx
import pytest
from cachetools import TTLCache
from prometheus_client.parser import text_string_to_metric_families

from batching import MicroBatcher
from cache import PredictionCache
from servers import AUTH, served


def applications(service, n: int) -> list:
    """n different valid applications."""
    return [service.EXAMPLE_INPUT.model_copy(update={"loan_amount": 1_000 + 37 * i,
                                                     "previous_defaults": i % 4})
            for i in range(n)]


async def post_all(url: str, bodies: list[dict], concurrency: int) -> list[httpx.Response]:
    """POST every body to url, `concurrency` at a time."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=AUTH) as client:
        return await asyncio.gather(*(client.post(url, json=body) for body in bodies))


def samples(url: str, name: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} for one metric family on url/metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) if family.name == name
            for s in family.samples}


# --- the batcher, in this process ---------------------------------------------------------

def test_batcher_answers_each_caller_with_its_own_result_in_bounded_batches():
    sizes = []

    async def main():
        batcher = MicroBatcher(lambda items: [item * 10 for item in items], max_batch_size=4,
                               on_batch=sizes.append)
        return await asyncio.gather(*(batcher.submit(i) for i in range(10)))

    assert asyncio.run(main()) == [i * 10 for i in range(10)]
    assert sum(sizes) == 10 and max(sizes) == 4  # concurrent callers shared model calls


def test_batcher_gives_a_failed_batch_error_to_every_caller_and_goes_on():
    def predict(items):
        if "bad" in items:
            raise ValueError("model failed")
        return items

    async def main():
        batcher = MicroBatcher(predict, max_batch_size=8)
        first = await asyncio.gather(batcher.submit("bad"), batcher.submit("ok"),
                                     return_exceptions=True)
        return first, await batcher.submit("later")

    first, later = asyncio.run(main())
    assert all(isinstance(result, ValueError) for result in first)
    assert later == "later"


# --- the cache -------------------------------------------------------------------------------

def test_cache_key_is_the_canonical_request_and_the_artifact(service):
    store = TTLCache(maxsize=10, ttl=60)
    cache = PredictionCache("sha-a", store)
    request = service.EXAMPLE_INPUT
    cache.put(request, "answer")
    same_values = service.LoanApplication(**{**request.model_dump(), "annual_income": 48000})
    assert cache.get(same_values) == "answer"  # 48000 and 48000.0 are one request
    assert cache.get(request.model_copy(update={"term_months": 12})) is None
    assert PredictionCache("sha-b", store).get(request) is None  # another model: a miss


def test_cache_is_bounded_in_size(service):
    cache = PredictionCache("sha", TTLCache(maxsize=2, ttl=60))
    first, *rest = applications(service, 3)
    for request in (first, *rest):
        cache.put(request, "answer")
    assert cache.get(first) is None and all(cache.get(r) == "answer" for r in rest)


def test_a_repeated_request_is_a_hit_with_the_uncached_answer(client, service):
    from prometheus_client import REGISTRY

    def lookups(result):
        return REGISTRY.get_sample_value("credit_risk_cache_lookups_total",
                                         {"result": result}) or 0

    request = applications(service, 1)[0].model_copy(update={"annual_income": 77_777})
    hits, misses = lookups("hit"), lookups("miss")
    first = client.post("/score", json=request.model_dump()).json()
    second = client.post("/score", json=request.model_dump()).json()
    assert (lookups("miss") - misses, lookups("hit") - hits) == (1, 1)
    uncached = service.score(service.MODEL, [request],
                             service.STORED_MODEL.info.metadata["decision_threshold"],
                             service.STORED_MODEL.tag.version)[0].model_dump()
    for answer in (first, second):
        assert {**answer, "request_id": ""} == {**uncached, "request_id": ""}
    assert first["request_id"] != second["request_id"]


# --- a real server under load ------------------------------------------------------------

@pytest.mark.timeout(180)
def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(trained, service):
    requests = applications(service, 256)
    with served(CREDIT_RISK_MAX_BATCH_SIZE="8", CREDIT_RISK_CACHE_ENTRIES="0") as url:
        responses = asyncio.run(post_all(f"{url}/score", [r.model_dump() for r in requests],
                                         concurrency=32))
        batches = samples(url, "credit_risk_batch_size")
    assert [r.status_code for r in responses] == [200] * len(requests)
    expected = service.score(service.MODEL, requests,
                             service.STORED_MODEL.info.metadata["decision_threshold"],
                             service.STORED_MODEL.tag.version)
    assert [r.json()["probability_of_default"] for r in responses] == [
        e.probability_of_default for e in expected]
    calls = batches[("credit_risk_batch_size_count", ())]
    singles = batches[("credit_risk_batch_size_bucket", (("le", "1.0"),))]
    up_to_max = batches[("credit_risk_batch_size_bucket", (("le", "8.0"),))]
    assert batches[("credit_risk_batch_size_sum", ())] == len(requests)
    assert singles < calls, "no model call took more than one application"
    assert up_to_max == calls, "a batch was larger than CREDIT_RISK_MAX_BATCH_SIZE"


@pytest.mark.timeout(180)
def test_overload_gets_a_quick_json_503_and_the_service_recovers(trained, service):
    body = service.EXAMPLE_INPUT.model_dump()
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
