"""The credit-risk scoring service: it wires the parts in credit_risk/ together.

`bentoml serve service:CreditRisk` imports this module before it starts any worker. The
settings are read here, once; an invalid one, or a missing or altered model file, stops the
server at once with one line naming what is wrong.
"""

import logging
import uuid
from pathlib import Path

import bentoml
from cachetools import TTLCache
from threadpoolctl import threadpool_limits

from credit_risk import artifact, jsonl_log, scoring, telemetry
from credit_risk.batching import MicroBatcher
from credit_risk.cache import PredictionCache
from credit_risk.middleware import audit, auth, errors, limits, overload, rejections
from credit_risk.openapi import DeclaredOpenAPI
from credit_risk.schema import Batch, LoanApplication, Score, Scores
from credit_risk.settings import Settings, SettingsError


def start_or_exit():
    """The settings, the verified model and the log key (None: the prediction log is plain),
    or SystemExit with one line saying what is wrong."""
    try:
        settings = Settings.from_env()
        key = jsonl_log.read_key(settings.log_key_file) if settings.log_key_file else None
        model = scoring.load(settings.model, settings.signing_public_key, settings.runtime)
        return settings, model, key
    except (SettingsError, jsonl_log.LogKeyError, artifact.ArtifactError) as error:
        raise SystemExit(f"credit-risk service not started: {error}") from None
    except bentoml.exceptions.NotFound as error:
        raise SystemExit(f"credit-risk service not started: CREDIT_RISK_MODEL: {error}") from None


SETTINGS, MODEL, LOG_KEY = start_or_exit()

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
    base_image=SETTINGS.base_image,
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
    model_ref = bentoml.models.BentoModel(MODEL.tag)  # packaged by `bentoml build`

    def __init__(self) -> None:
        threadpool_limits(limits=1, user_api="openmp")  # extra OpenMP threads only spin here
        self.model = MODEL
        self.batcher = MicroBatcher(self.score_and_record, SETTINGS.micro_batch_size,
                                    on_batch=telemetry.BATCH_SIZE.observe)
        # TTLCache (from cachetools) drops the least recently used entry when full and any
        # entry older than its maximum age; it is not thread-safe, and needs not be: only
        # the worker's event loop touches it.
        store = (TTLCache(SETTINGS.cache_entries, SETTINGS.cache_max_age_s)
                 if SETTINGS.cache_entries else None)
        self.cache = PredictionCache(MODEL.sha256, store)
        telemetry.describe_model(MODEL)

    @bentoml.on_deployment
    def refuse_to_start_without_keys() -> None:
        """Fail closed. `bentoml serve` runs this once, before it starts any worker (and not
        on import, so `bentoml build` needs no keys): no API key and no explicit
        CREDIT_RISK_ALLOW_ANONYMOUS=1 stops the server with one line saying what to do."""
        try:
            auth.configured(SETTINGS.keys_file, SETTINGS.allow_anonymous)
        except (auth.NoKeysConfigured, ValueError) as error:
            raise SystemExit(f"credit-risk service not started: {error}") from None

    # --8<-- [start:score]
    @bentoml.api(input_spec=LoanApplication, output_spec=Score)
    async def score(self, **application) -> Score:
        application = LoanApplication(**application)
        if (remembered := self.cache.get(application)) is not None:
            telemetry.CACHE_LOOKUPS.labels(result="hit").inc()
            answer = remembered.model_copy(update={"request_id": uuid.uuid4().hex})
            telemetry.record([application], [answer], SETTINGS.logs, LOG_KEY)
            return answer
        if self.cache.store is not None:
            telemetry.CACHE_LOOKUPS.labels(result="miss").inc()
        answer = await self.batcher.submit(application)
        self.cache.put(application, answer)
        return answer
    # --8<-- [end:score]

    @bentoml.api(input_spec=Batch, output_spec=Scores)
    def score_batch(self, applications: list[LoanApplication]) -> Scores:
        return Scores(scores=self.score_and_record(applications))

    def score_and_record(self, applications: list[LoanApplication]) -> list[Score]:
        scores = scoring.score(self.model, applications)
        telemetry.record(applications, scores, SETTINGS.logs, LOG_KEY)
        return scores


# A rejected request's traceback would copy the client's values into the server log.
logging.getLogger("bentoml._internal.server.http_app").addFilter(rejections.QuietRejections())

# --8<-- [start:middleware]
# Every request passes these in order, the first outermost. The cheap refusals come before
# anything reads the body or reaches the model; the audit log, outside them, records them too.
# The body is read whole (with a deadline) before a request takes an in-flight slot, so slow
# uploads cannot crowd out other clients.
CreditRisk.add_asgi_middleware(errors.JsonErrors)                  # plain-text 404, 405 -> JSON
CreditRisk.add_asgi_middleware(audit.AuditLog, model_version=MODEL.version,
                               log_dir=SETTINGS.logs)
CreditRisk.add_asgi_middleware(limits.LimitHeaderSize,
                               max_bytes=SETTINGS.max_header_bytes)           # 431
CreditRisk.add_asgi_middleware(DeclaredOpenAPI, service=CreditRisk,           # /docs.json
                               anonymous=SETTINGS.allow_anonymous)
CreditRisk.add_asgi_middleware(auth.RequireApiKey, keys_file=SETTINGS.keys_file,  # 401, 403
                               anonymous=SETTINGS.allow_anonymous,
                               metrics_networks=SETTINGS.networks)
CreditRisk.add_asgi_middleware(limits.RateLimitPerKey, rate_per_s=SETTINGS.rate_limit_per_s,
                               burst=SETTINGS.rate_burst)                     # 429
CreditRisk.add_asgi_middleware(limits.JsonOnly)                              # 415
CreditRisk.add_asgi_middleware(limits.LimitBodySize, max_bytes=SETTINGS.max_body_bytes,
                               timeout_s=SETTINGS.body_timeout_s)             # 413, 408
CreditRisk.add_asgi_middleware(overload.ShedOverload,
                               max_in_flight=SETTINGS.max_in_flight)          # 503
CreditRisk.add_asgi_middleware(rejections.RejectedInputMiddleware)  # counts BentoML's 400s
# --8<-- [end:middleware]
