"""Scaling behaviour in this process: the batcher and the prediction cache."""

import asyncio

from cachetools import TTLCache
from checks import applications

from credit_risk import schema, scoring
from credit_risk.batching import MicroBatcher
from credit_risk.cache import PredictionCache
from credit_risk.schema import EXAMPLE_INPUT

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
    request = EXAMPLE_INPUT
    cache.put(request, "answer")
    same_values = schema.LoanApplication(**{**request.model_dump(), "annual_income": 48000})
    assert cache.get(same_values) == "answer"  # 48000 and 48000.0 are one request
    assert cache.get(request.model_copy(update={"term_months": 12})) is None
    assert PredictionCache("sha-b", store).get(request) is None  # another model: a miss


def test_cache_is_bounded_in_size(service):
    cache = PredictionCache("sha", TTLCache(maxsize=2, ttl=60))
    first, *rest = applications(3)
    for request in (first, *rest):
        cache.put(request, "answer")
    assert cache.get(first) is None and all(cache.get(r) == "answer" for r in rest)


def test_a_repeated_request_is_a_hit_with_the_uncached_answer(client, service):
    from prometheus_client import REGISTRY

    def lookups(result):
        return REGISTRY.get_sample_value("credit_risk_cache_lookups_total",
                                         {"result": result}) or 0

    request = applications(1)[0].model_copy(update={"annual_income": 77_777})
    hits, misses = lookups("hit"), lookups("miss")
    first = client.post("/score", json=request.model_dump()).json()
    second = client.post("/score", json=request.model_dump()).json()
    assert (lookups("miss") - misses, lookups("hit") - hits) == (1, 1)
    uncached = scoring.score(service.MODEL, [request])[0].model_dump()
    for answer in (first, second):
        assert {**answer, "request_id": ""} == {**uncached, "request_id": ""}
    assert first["request_id"] != second["request_id"]
