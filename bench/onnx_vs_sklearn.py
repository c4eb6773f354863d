"""The credit-risk model in process: the sklearn pipeline against its ONNX export in ONNX
Runtime, one thread each (OMP_NUM_THREADS=1, one intra-op thread).

    python bench/onnx_vs_sklearn.py [--calls 2000] [--out bench/results/onnx.json]

Measures the latency of scoring one row (`scoring.probabilities` on a one-row frame, the
median and 95th percentile over --calls calls) and rows per second for batches of 1, 64,
500 and 10 000 rows. Both runtimes score the same frames through the same function, so the
DataFrame handling around the model is counted for both. Trains the default model into a
temporary BENTOML_HOME (a second or two); needs no server. (Not named onnx.py: run as a
script, that name would shadow the `onnx` package that skl2onnx imports.)
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-bench-onnx-")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "credit-risk"))

import numpy as np  # noqa: E402

import train  # noqa: E402
from credit_risk import scoring  # noqa: E402
from training import data  # noqa: E402

BATCHES = (1, 64, 500, 10_000)


def latency_ms(model, frame, calls: int) -> dict:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        scoring.probabilities(model, frame)
        times.append(time.perf_counter() - start)
    return {"p50_ms": round(float(np.percentile(times, 50)) * 1e3, 4),
            "p95_ms": round(float(np.percentile(times, 95)) * 1e3, 4)}


def rows_per_s(model, frame, min_seconds: float = 1.0) -> float:
    """Rows per second, scoring `frame` repeatedly for at least `min_seconds`."""
    scoring.probabilities(model, frame)  # warm up
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds:
        scoring.probabilities(model, frame)
        calls += 1
    return round(calls * len(frame) / elapsed, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "onnx.json")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")
    stored, _ = train.run()
    models = {runtime: scoring.load(str(stored.tag), runtime=runtime)
              for runtime in ("sklearn", "onnx")}
    held_out = data.snapshot()[1]
    rows = data.generate(10_000, seed=7)
    results = {"one_row": {}, "rows_per_s": {str(n): {} for n in BATCHES}}
    for runtime, model in models.items():
        scoring.probabilities(model, held_out.head(1))
        results["one_row"][runtime] = latency_ms(model, held_out.head(1), args.calls)
        for n in BATCHES:
            results["rows_per_s"][str(n)][runtime] = rows_per_s(model, rows.head(n))
    difference = np.abs(scoring.probabilities(models["onnx"], held_out)
                        - scoring.probabilities(models["sklearn"], held_out))
    results["speedup_onnx_over_sklearn"] = {
        "one_row_p50": round(results["one_row"]["sklearn"]["p50_ms"]
                             / results["one_row"]["onnx"]["p50_ms"], 1),
        **{f"rows_per_s_batch_{n}": round(results["rows_per_s"][str(n)]["onnx"]
                                          / results["rows_per_s"][str(n)]["sklearn"], 1)
           for n in BATCHES}}
    results["max_probability_difference"] = float(difference.max())
    results["environment"] = {
        "machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
        **{name: version(name) for name in ("scikit-learn", "onnxruntime", "skl2onnx")},
        "calls": args.calls, "model": str(stored.tag),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
