"""The flagship's scoring behind Ray Serve, with autoscaling: an alternative to BentoML's
server where a team already runs Ray.

    python -m ops.ray_serve [--port 8000]      # POST /score, the API's body and API keys

Same request schema (LoanApplication, 400 with the errors), same API keys (the keys file
from Settings, 401 without a valid key unless CREDIT_RISK_ALLOW_ANONYMOUS, 403 without the
score scope), same model and decision rule (credit_risk.scoring). What it leaves out:
the BentoML service's rate limits, answer cache, audit log and metrics middleware.
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import httpx
from pydantic import ValidationError
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from credit_risk import api_keys, scoring
from credit_risk.middleware.auth import UNAUTHENTICATED
from credit_risk.schema import EXAMPLE_INPUT, LoanApplication
from credit_risk.settings import Settings, SettingsError
from ops.processes import HOST

# --8<-- [start:autoscaling]
AUTOSCALING = {
    "min_replicas": 1,  # one warm replica: no cold start for the first request
    "max_replicas": 3,  # more replicas than cores would only share them; the ceiling
                       # also bounds the bill
    # Requests in a replica (running + queued) that Serve aims for. Each request is one
    # single-row model call (milliseconds), so 2 keeps queues, and latency, short.
    "target_ongoing_requests": 2,
    # Replicas report their queue every second (Ray's default is 10 s; Ray 2.60 deprecates
    # this field for the RAY_SERVE_*_AUTOSCALING_METRIC_PUSH_INTERVAL_S variables)...
    "metrics_interval_s": 1,
    "look_back_period_s": 5,   # ...and decisions average the last 5 s: the delays below
                               # only start to count once this window has seen the change
    "upscale_delay_s": 2,      # add replicas after 2 s of too-long queues: a burst is served
                               # quickly, a single spike does not start a replica
    "downscale_delay_s": 10,   # remove them after 10 s of short queues: short lulls between
                               # bursts keep the capacity (production: minutes, as the HPA's 300 s)
}
REPLICA_CPUS = 0.5  # what Ray reserves for each replica (a scheduling unit, not a limit)
# --8<-- [end:autoscaling]


# --8<-- [start:deployment]
@serve.deployment(autoscaling_config=AUTOSCALING, ray_actor_options={"num_cpus": REPLICA_CPUS},
                  max_ongoing_requests=8)
class CreditRiskScorer:
    """One replica: the model and the keys file, loaded once when the replica starts."""

    def __init__(self, tag: str, keys_file: str, allow_anonymous: bool) -> None:
        self.model = scoring.load(tag)
        self.keys = api_keys.read(Path(keys_file))
        self.allow_anonymous = allow_anonymous

    async def __call__(self, request: Request) -> JSONResponse:
        if not self.allow_anonymous:
            record = api_keys.verify(self.keys, request.headers.get("x-api-key", ""))
            if record is None:
                return JSONResponse({"error": "A valid API key is required in the X-API-Key "
                                              "header."}, status_code=401,
                                    headers=UNAUTHENTICATED)
            if "score" not in record.scopes:
                return JSONResponse({"error": "This key may not score."}, status_code=403)
        try:
            application = LoanApplication.model_validate_json(await request.body())
        except ValidationError as error:
            return JSONResponse({"error": "invalid application", "detail": error.errors(
                include_url=False, include_input=False, include_context=False)},
                status_code=400)
        [answer] = scoring.score(self.model, [application])
        return JSONResponse(answer.model_dump())
# --8<-- [end:deployment]


def application(settings: Settings):
    """The Serve application for `settings`, pinned to the exact model version."""
    tag = scoring.load(settings.model).tag  # resolve "latest" once, refuse a bad model early
    return CreditRiskScorer.bind(tag, str(settings.keys_file), settings.allow_anonymous)


def start(settings: Settings, port: int, name: str = "credit-risk") -> str:
    """Deploy on the connected Ray cluster (one HTTP proxy, on the head, bound to loopback);
    returns the scoring URL."""
    serve.start(proxy_location="HeadOnly", http_options={"host": HOST, "port": port})
    serve.run(application(settings), name=name, route_prefix="/score")
    return f"http://{HOST}:{port}/score"


def replicas(name: str = "credit-risk") -> dict[str, int]:
    """The deployment's replicas now, by state: {"RUNNING": 1, "STARTING": 1, ...}."""
    return dict(serve.status().applications[name].deployments["CreditRiskScorer"]
                .replica_states)


# name, clients, at most seconds. The busy phase ends once extra replicas have served for
# SCALED_FOR_S; the last idle phase once the deployment is back to one replica.
PHASES = (("idle", 1, 5), ("busy", 12, 150), ("idle", 1, 150))
SCALED_FOR_S = 10


def _clients(url: str, headers: dict, clients: int, stop: threading.Event,
             log: list) -> list[threading.Thread]:
    """`clients` threads posting the example application until `stop` is set; each request
    logs (start, seconds, status code or error name)."""
    def client() -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status = http.post(url, json=EXAMPLE_INPUT.model_dump()).status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                log.append((started, time.monotonic() - started, status))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def _p99_ms(latencies: list[float]) -> float | None:
    return round(sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000, 1) \
        if latencies else None


def _phase_done(name: str, samples: list[dict]) -> bool:
    if name == "busy":
        recent = samples[-SCALED_FOR_S:]
        return len(recent) == SCALED_FOR_S and all(s["replicas"] > 1 for s in recent)
    return samples[-1]["replicas"] == 1 and any(s["replicas"] > 1 for s in samples)


def ramp(url: str, headers: dict, phases=PHASES) -> dict:
    """Drive the deployment through `phases` of concurrent clients, sampling replicas,
    requests per second and p99 latency every second, each phase ended early by
    `_phase_done`. Returns the samples and a summary."""
    log, samples, start = [], [], time.monotonic()
    for name, clients, seconds in phases:
        stop = threading.Event()
        threads = _clients(url, headers, clients, stop, log)
        phase_start = time.monotonic()
        try:
            while time.monotonic() - phase_start < seconds:
                sample_start = time.monotonic()
                stop.wait(1.0)  # the sampling cadence, not synchronisation
                recent = [took for t, took, _ in log if t >= sample_start]
                states = replicas()
                samples.append({"t_s": round(time.monotonic() - start, 1), "phase": name,
                                "clients": clients, "replicas": states.get("RUNNING", 0),
                                "starting": states.get("STARTING", 0),
                                "requests_per_s": len(recent), "p99_ms": _p99_ms(recent)})
                if _phase_done(name, samples):
                    break
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=40)
    busy = [s for s in samples if s["phase"] == "busy"]
    up = next((s["t_s"] for s in busy if s["replicas"] > 1), None)
    starting = next((s["t_s"] for s in samples if s["starting"]), None)
    down = next((s["t_s"] for s in samples if s["t_s"] > busy[-1]["t_s"]
                 and s["replicas"] == 1), None)
    return {"samples": samples, "requests": len(log),
            "failed": sum(1 for *_, status in log if status != 200),
            "failures": sorted({str(status) for *_, status in log if status != 200}),
            "max_replicas": max(s["replicas"] for s in samples),
            # seconds from the load's start to a second replica answering
            "scale_up_after_s": up and round(up - busy[0]["t_s"] + 1, 1),
            # seconds from a replica being started to it running: the cost of a new replica
            "replica_start_s": up and starting and round(up - starting, 1),
            "scale_down_after_s": down and round(down - busy[-1]["t_s"], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.ray_serve",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--address", default=None, help="Ray cluster (default: a local one)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        parser.exit(2, f"error: {error}\n")
    from ops.ray_batch import connect

    connect(args.address)
    print(f"scoring at {start(settings, args.port)} (Ctrl-C stops)")
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        serve.shutdown()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
