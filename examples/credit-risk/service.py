"""The credit-risk scoring service: one application or a batch, with a typed contract."""

import os
import uuid
from pathlib import Path
from typing import Literal

import bentoml
import pandas as pd
from cachetools import TTLCache
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

import api_docs
import artifact
import audit
import auth
import limits
import monitoring
from batching import MicroBatcher
from cache import PredictionCache
from overload import ShedOverload
from train import MODEL_NAME

# --8<-- [start:model-tag]
# Which stored model to serve; set it to a tag to pin a version or roll back.
MODEL_TAG = os.environ.get("CREDIT_RISK_MODEL", f"{MODEL_NAME}:latest")
# --8<-- [end:model-tag]
MAX_BATCH = 500

# --8<-- [start:scaling-knobs]
# How /score scales. Each default comes from `make bench` on a 2-core machine:
# - one model call costs about the same for 1 and for 64 rows, so up to 64 waiting
#   applications share a call (1 turns batching off);
# - past 128 requests in flight per worker, queueing would push answers past the 250 ms SLO,
#   so further requests get a 503 at once;
# - identical applications within 5 minutes are answered from the cache (0 turns it off).
MAX_BATCH_SIZE = int(os.environ.get("CREDIT_RISK_MAX_BATCH_SIZE", "64"))
MAX_IN_FLIGHT = int(os.environ.get("CREDIT_RISK_MAX_IN_FLIGHT", "128"))
CACHE_ENTRIES = int(os.environ.get("CREDIT_RISK_CACHE_ENTRIES", "10000"))
CACHE_MAX_AGE_S = 300
# --8<-- [end:scaling-knobs]

AgeBand = Literal["18-25", "26-35", "36-50", "51-65", "65+"]
Employment = Literal["employed", "self_employed", "unemployed", "retired", "student"]
Purpose = Literal["debt_consolidation", "home_improvement", "car", "education", "medical",
                  "business", "other"]
Term = Literal[12, 24, 36, 60]


class LoanApplication(BaseModel):
    """One application. Out-of-range, unknown or extra fields are answered with a 400."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # strict: a number must be a JSON number (not true, not "48000"), a count an integer.
    annual_income: float = Field(ge=5_000, le=1_000_000, strict=True, description="Gross, in EUR")
    loan_amount: float = Field(ge=500, le=100_000, strict=True, description="Requested, in EUR")
    debt_to_income: float = Field(ge=0, le=1.5, strict=True,
                                  description="Monthly debt over monthly income")
    credit_history_years: float = Field(ge=0, le=60, strict=True)
    previous_defaults: int = Field(ge=0, le=10, strict=True)
    age_band: AgeBand
    employment: Employment
    purpose: Purpose
    term_months: Term


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    applications: list[LoanApplication] = Field(min_length=1, max_length=MAX_BATCH)


class Score(BaseModel):
    probability_of_default: float
    decision: Literal["approve", "decline"]
    model_version: str
    request_id: str = Field(description="Quote it when reporting the outcome of this loan")


class Scores(BaseModel):
    scores: list[Score]


EXAMPLE_INPUT = LoanApplication(
    annual_income=48_000, loan_amount=12_000, debt_to_income=0.25, credit_history_years=9,
    previous_defaults=0, age_band="26-35", employment="employed", purpose="car", term_months=36,
)


def score(model, applications: list[LoanApplication], threshold: float,
          model_version: str) -> list[Score]:
    """Score applications with a loaded pipeline; no BentoML runtime needed."""
    rows = pd.DataFrame([application.model_dump() for application in applications])
    probabilities = model.predict_proba(rows)[:, 1]
    return [
        Score(probability_of_default=round(float(p), 3),
              decision="decline" if p > threshold else "approve",
              model_version=model_version, request_id=uuid.uuid4().hex)
        for p in probabilities
    ]


def load_model(tag: str):
    """The stored model and its verified pipeline; raises ArtifactError naming a bad file."""
    stored = bentoml.models.get(tag)
    return stored, artifact.load_verified(stored.path, stored.info.metadata["artifact"]["sha256"])


# Loaded at import: `bentoml serve` imports this module before it starts any worker, so a
# missing or altered model file stops the server at once, with the file's path in the error.
STORED_MODEL, MODEL = load_model(MODEL_TAG)


# --8<-- [start:image]
# The container image `bentoml build` describes. BENTO_BASE_IMAGE names a local base image
# where no registry is reachable (deploy/container/build-base-image.sh makes one). "local"
# means the base image brings Python, which skips BentoML's apt-get of build-essential and
# git: every package here has a wheel, so the image needs no compiler.
# (Image.requirements_file would resolve the file from the working directory, so this reads
# it beside this module, which works wherever the service is imported from.)
PINNED = [line for line in Path(__file__).with_name("requirements.txt").read_text().splitlines()
          if line and not line.lstrip().startswith("#")]
IMAGE = bentoml.images.Image(
    base_image=os.environ.get("BENTO_BASE_IMAGE", "python:3.11-slim-bookworm"),
    distro="local",
    lock_python_packages=False,  # requirements.txt is already fully pinned
).python_packages(*PINNED)
# --8<-- [end:image]


# --8<-- [start:service-config]
@bentoml.service(
    name="credit_risk_service",
    image=IMAGE,
    # One worker process per core is the most a CPU-bound model can use; more is set with
    # BENTOML_CONFIG_OPTIONS="services.credit_risk_service.workers=2". A request still
    # unanswered after 10 s gets a 504 JSON error.
    workers=1,
    traffic={"timeout": 10},
    # Latency buckets around this model's range: a few ms in process, 250 ms is the SLO.
    metrics={"duration": {"buckets": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]}},
)
# --8<-- [end:service-config]
class CreditRisk:
    model_ref = bentoml.models.BentoModel(STORED_MODEL.tag)  # packaged by `bentoml build`

    def __init__(self) -> None:
        threadpool_limits(limits=1, user_api="openmp")  # extra OpenMP threads only spin here
        self.model = MODEL
        self.threshold = STORED_MODEL.info.metadata["decision_threshold"]
        self.version = STORED_MODEL.tag.version
        self.batcher = MicroBatcher(self.score_and_record, MAX_BATCH_SIZE,
                                    on_batch=monitoring.BATCH_SIZE.observe)
        # TTLCache (from cachetools) drops the least recently used entry when full and any
        # entry older than CACHE_MAX_AGE_S; it is not thread-safe, and needs not be: only
        # the worker's event loop touches it.
        store = TTLCache(CACHE_ENTRIES, CACHE_MAX_AGE_S) if CACHE_ENTRIES else None
        self.cache = PredictionCache(STORED_MODEL.info.metadata["artifact"]["sha256"], store)
        monitoring.describe_model(STORED_MODEL)

    @bentoml.on_deployment
    def refuse_to_start_without_keys() -> None:
        """Fail closed. `bentoml serve` runs this once, before it starts any worker (and not
        on import, so `bentoml build` needs no keys): no API key and no explicit
        CREDIT_RISK_ALLOW_ANONYMOUS=1 stops the server with one line saying what to do."""
        try:
            auth.configured()
        except (auth.NoKeysConfigured, ValueError) as error:
            raise SystemExit(f"credit-risk service not started: {error}") from None

    # --8<-- [start:score]
    @bentoml.api(input_spec=LoanApplication, output_spec=Score)
    async def score(self, **application) -> Score:
        application = LoanApplication(**application)
        if (remembered := self.cache.get(application)) is not None:
            monitoring.CACHE_LOOKUPS.labels(result="hit").inc()
            answer = remembered.model_copy(update={"request_id": uuid.uuid4().hex})
            monitoring.record([application], [answer])
            return answer
        if CACHE_ENTRIES:
            monitoring.CACHE_LOOKUPS.labels(result="miss").inc()
        answer = await self.batcher.submit(application)
        self.cache.put(application, answer)
        return answer
    # --8<-- [end:score]

    @bentoml.api(input_spec=Batch, output_spec=Scores)
    def score_batch(self, applications: list[LoanApplication]) -> Scores:
        return Scores(scores=self.score_and_record(applications))

    def score_and_record(self, applications: list[LoanApplication]) -> list[Score]:
        scores = score(self.model, applications, self.threshold, self.version)
        monitoring.record(applications, scores)
        return scores


# --8<-- [start:middleware]
# Every request passes these in order, the first outermost. The cheap refusals come before
# anything reads the body or reaches the model; the audit log, outside them, records them too.
CreditRisk.add_asgi_middleware(audit.AuditLog, model_version=STORED_MODEL.tag.version)
CreditRisk.add_asgi_middleware(api_docs.DeclaredOpenAPI, service=CreditRisk)  # /docs.json
CreditRisk.add_asgi_middleware(auth.RequireApiKey)                         # 401, 403
CreditRisk.add_asgi_middleware(limits.RateLimitPerKey)                     # 429
CreditRisk.add_asgi_middleware(limits.JsonOnly)                            # 415
CreditRisk.add_asgi_middleware(ShedOverload, max_in_flight=MAX_IN_FLIGHT)  # 503
CreditRisk.add_asgi_middleware(limits.LimitBodySize)                       # 413
CreditRisk.add_asgi_middleware(monitoring.RejectedInputMiddleware)  # counts BentoML's 400s
# --8<-- [end:middleware]
