"""`make bench`: the same model served thirteen ways on this machine, side by side.

    python bench/run.py [--requests 1600] [--out bench/results]
    python bench/run.py --report-only   (targets, summary and plots again from results.json)

Writes results.json and summary.md to --out and the plots to docs/img/benchmarks/, which
docs/benchmarks.md shows, then profiles the flagship (bench/profiling.py: profile.json).
Needs a trained model in BENTOML_HOME (the Makefile trains one), `hey`, `nginx` and py-spy.
"""

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import harness
import profiling
import report
from harness import Server

SERVERS = [
    Server("fastapi", "FastAPI + uvicorn baseline", "fastapi", target="fastapi_baseline:app"),
    Server("no_batching", "BentoML, no batching", "bentoml",
           env=(("CREDIT_RISK_MICRO_BATCH_SIZE", "1"), ("CREDIT_RISK_CACHE_ENTRIES", "0"))),
    Server("batching", "BentoML, batching (the flagship)", "bentoml",
           env=(("CREDIT_RISK_CACHE_ENTRIES", "0"),)),
    Server("native_list", "BentoML batchable API, one-element lists", "bentoml",
           target="native_batching:NativeBatching", path="/score_many", body="list"),
    Server("native_wrapper", "BentoML batchable API behind a proxy", "bentoml",
           target="native_batching:Wrapper"),
    Server("two_workers", "BentoML, batching, 2 workers", "bentoml",
           env=(("CREDIT_RISK_CACHE_ENTRIES", "0"),
                ("BENTOML_CONFIG_OPTIONS", "services.credit_risk_service.workers=2"))),
    Server("cache", "BentoML, batching, cache hits", "bentoml"),
    Server("nginx", "2 replicas behind nginx", "nginx",
           env=(("CREDIT_RISK_CACHE_ENTRIES", "0"),)),
    # Two experiments on the serving targets: shed load earlier (the p99 objective), and
    # drop BentoML's access log, whose logging calls are among the profile's top functions.
    Server("shedding", f"BentoML, batching, in-flight limit {report.SHEDDING_LIMIT}", "bentoml",
           env=(("CREDIT_RISK_CACHE_ENTRIES", "0"),
                ("CREDIT_RISK_MAX_IN_FLIGHT", str(report.SHEDDING_LIMIT)))),
    Server("no_access_log", "BentoML, batching, no access log", "bentoml",
           env=(("CREDIT_RISK_CACHE_ENTRIES", "0"),
                ("BENTOML_CONFIG_OPTIONS",
                 "services.credit_risk_service.logging.access.enabled=false"))),
]
ONNX = (("CREDIT_RISK_CACHE_ENTRIES", "0"), ("CREDIT_RISK_RUNTIME", "onnx"))
SERVERS.append(Server("onnx", "BentoML, batching, ONNX Runtime", "bentoml", env=ONNX))
BATCH_ENDPOINTS = [
    Server("batch_endpoint", "BentoML /score_batch, 64 rows a request", "bentoml",
           path="/score_batch", body="batch64", env=(("CREDIT_RISK_CACHE_ENTRIES", "0"),)),
    Server("batch_endpoint_onnx", "BentoML /score_batch, 64 rows a request, ONNX Runtime",
           "bentoml", path="/score_batch", body="batch64", env=ONNX),
]
CONCURRENCIES = [1, 8, 32, 64]


def per_call_ms(function, *args, repeat: int = 200) -> float:
    function(*args)
    start = time.perf_counter()
    for _ in range(repeat):
        function(*args)
    return (time.perf_counter() - start) / repeat * 1000


def in_process() -> dict:
    """The floor: the model and the service's scoring function, called directly."""
    import pandas as pd
    from threadpoolctl import threadpool_limits

    import service
    from credit_risk import scoring
    from credit_risk.schema import EXAMPLE_INPUT

    floor = {}
    onnx = scoring.load(service.MODEL.tag, runtime="onnx")
    with threadpool_limits(limits=1, user_api="openmp"):
        for rows in (1, 8, 64, 500):
            applications = [EXAMPLE_INPUT] * rows
            frame = pd.DataFrame([a.model_dump() for a in applications])
            predict = per_call_ms(service.MODEL.pipeline.predict_proba, frame)
            score = per_call_ms(scoring.score, service.MODEL, applications)
            onnx_predict = per_call_ms(scoring.probabilities, onnx, frame)
            floor[str(rows)] = {"predict_ms": round(predict, 3), "score_ms": round(score, 3),
                                "predict_rows_per_s": round(rows / predict * 1000),
                                "score_rows_per_s": round(rows / score * 1000),
                                "onnx_predict_ms": round(onnx_predict, 3),
                                "onnx_predict_rows_per_s": round(rows / onnx_predict * 1000)}
    return floor


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version(), "bentoml": version("bentoml"),
            "scikit-learn": version("scikit-learn"), "fastapi": version("fastapi"),
            "uvicorn": version("uvicorn"), "nginx": "Debian package",
            "load generator": "hey (Debian package)",
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1600, help="per concurrency point")
    parser.add_argument("--out", type=Path, default=harness.BENCH / "results")
    parser.add_argument("--plots", type=Path, default=harness.ROOT / "docs/img/benchmarks")
    parser.add_argument("--report-only", action="store_true",
                        help="re-derive targets, summary and plots from the stored results.json")
    args = parser.parse_args()
    if args.report_only:
        write(json.loads((args.out / "results.json").read_text()), args.out, args.plots)
        return
    results = {"machine": machine(), "requests_per_point": args.requests,
               "in_process": in_process(), "servers": {}}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        bodies = harness.bodies(Path(tmp))
        for server in [*SERVERS, *BATCH_ENDPOINTS]:
            run_dir = Path(tmp) / server.name
            run_dir.mkdir()
            print(f"{server.label} ...", flush=True)
            requests = (max(args.requests // 4, max(CONCURRENCIES)) if server.body == "batch64"
                        else args.requests)
            with harness.running(server, run_dir) as url:
                results["servers"][server.name] = {
                    "label": server.label, "path": server.path, "body": server.body,
                    **harness.sweep(url + server.path, bodies[server.body], CONCURRENCIES,
                                    requests)}
    write(results, args.out, args.plots)
    print("Profiling the flagship (bench/profiling.py) ...", flush=True)
    profiling.record(SERVERS, results["machine"], args.out, args.plots)


def write(results: dict, out: Path, plots: Path) -> None:
    """Check the targets, then write results.json, summary.md and the plots."""
    results["targets"] = report.targets(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "summary.md").write_text(report.summary(results))
    report.plot(results, plots)
    print(report.summary(results))


if __name__ == "__main__":
    main()
