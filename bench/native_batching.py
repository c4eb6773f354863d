"""BentoML's own adaptive batching, in the two ways a user would first try it.

- `NativeBatching`: a `batchable=True` endpoint; a client posts one-element lists,
  {"applications": [application]}, and BentoML's dispatcher merges concurrent requests.
- `Wrapper`: a single-application /score that calls that endpoint through a
  `bentoml.depends` proxy, which BentoML serves as a second service.

`make bench` runs both beside the flagship's own batcher (credit_risk/batching.py), which merges
single-application requests inside one worker without either a list body or a proxy.
"""

import bentoml

import service
from credit_risk import scoring
from credit_risk.schema import LoanApplication, Score


@bentoml.service(name="native_batching", workers=1, traffic={"timeout": 10})
class NativeBatching:
    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def score_many(self, applications: list[LoanApplication]) -> list[Score]:
        return scoring.score(service.MODEL, applications)


@bentoml.service(name="native_batching_wrapper", workers=1, traffic={"timeout": 10})
class Wrapper:
    batch = bentoml.depends(NativeBatching)

    @bentoml.api(input_spec=LoanApplication, output_spec=Score)
    async def score(self, **application) -> Score:
        scores = await self.batch.to_async.score_many([LoanApplication(**application)])
        return scores[0]
