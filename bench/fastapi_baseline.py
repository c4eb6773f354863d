"""What a user might write instead of BentoML: the same model behind plain FastAPI.

    uvicorn fastapi_baseline:app --host 127.0.0.1 --port 8000   (from examples/credit-risk
    on PYTHONPATH, with a trained model in the store)

It reuses the flagship's request schema, artifact check and scoring function, so the only
difference `make bench` measures is the serving layer. A sync endpoint: FastAPI runs it in
its thread pool, which is what most hand-written model servers do.
"""

import os

from fastapi import FastAPI

import service

app = FastAPI()
THRESHOLD = service.STORED_MODEL.info.metadata["decision_threshold"]
VERSION = service.STORED_MODEL.tag.version
assert os.environ.get("OMP_NUM_THREADS") == "1", "set OMP_NUM_THREADS=1 as for the service"


@app.get("/readyz")
def ready() -> str:
    return "ok"


@app.post("/score")
def score(application: service.LoanApplication) -> service.Score:
    return service.score(service.MODEL, [application], THRESHOLD, VERSION)[0]
