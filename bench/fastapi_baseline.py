"""What a user might write instead of BentoML: the same model behind plain FastAPI.

    uvicorn fastapi_baseline:app --host 127.0.0.1 --port 8000   (from examples/credit-risk
    on PYTHONPATH, with a trained model in the store)

It reuses the flagship's request schema, artifact check and scoring function, so the only
difference `make bench` measures is the serving layer. A sync endpoint: FastAPI runs it in
its thread pool, which is what most hand-written model servers do.
"""

import os

from fastapi import FastAPI

from credit_risk import scoring
from credit_risk.schema import LoanApplication, Score
from credit_risk.settings import Settings

app = FastAPI()
MODEL = scoring.load(Settings.from_env().model)
assert os.environ.get("OMP_NUM_THREADS") == "1", "set OMP_NUM_THREADS=1 as for the service"


@app.get("/readyz")
def ready() -> str:
    return "ok"


@app.post("/score")
def score(application: LoanApplication) -> Score:
    return scoring.score(MODEL, [application])[0]
