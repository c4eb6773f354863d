"""Beyond one server, measured: batch scoring rows per second and memory, and Ray Serve's
autoscaling over a load ramp.

    python bench/batch.py [--rows 200000] [--chunk-rows 20000]
    python bench/batch.py --plot-only      # the plots again from bench/results/batch.json

Rows per second, all in this one run on the same input: the in-process floor (one
`predict_proba` over the whole file), the embedded job in this process and as a command,
Ray Data with one and two scoring actors on a local three-node cluster, and the online
`/score_batch` endpoint (64 rows a request, 8 clients). Peak memory of the command with a
chunk of `--chunk-rows` and with the whole file as one chunk. Then the autoscaling ramp of
`ops.ray_serve.ramp` on the same cluster. Writes bench/results/batch.json and two plots in
docs/img/benchmarks/; the batch chapter and the benchmarks page render their figures from
them. Needs a trained model in BENTOML_HOME (`make bench` trains one); about five minutes
on 2 cores.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import harness  # puts examples/credit-risk on sys.path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from credit_risk import scoring  # noqa: E402
from credit_risk.schema import FEATURES, MODEL_NAME  # noqa: E402
from credit_risk.settings import Settings  # noqa: E402
from ops import batch, processes, ray_batch  # noqa: E402
from ops.ray_cluster import local_cluster  # noqa: E402
from training import data  # noqa: E402

ROOT = harness.ROOT
PLOTS = ROOT / "docs" / "img" / "benchmarks"
# Runs a command and prints the peak resident memory of it (and its children) in KiB.
PEAK_RSS = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
BATCH_ENDPOINT = harness.Server("batch_endpoint", "BentoML /score_batch, 64 rows a request",
                                "bentoml", path="/score_batch", body="batch64",
                                env=(("CREDIT_RISK_CACHE_ENTRIES", "0"),))


def command(source: Path, out: Path, tag: str, chunk_rows: int) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB) of `python -m ops.batch score` in a fresh process."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "ops.batch", "score", str(source),
         str(out), "--model", tag, "--chunk-rows", str(chunk_rows), "--no-progress"],
        cwd=harness.EXAMPLE, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, round(int(done.stdout.split()[-1]) / 1024)


def online_rows_per_s(work: Path) -> float:
    """Rows per second through `/score_batch`: 64 rows a request, 8 clients."""
    with harness.running(BATCH_ENDPOINT, work) as url:
        body = harness.bodies(work)["batch64"]
        harness.load(url + BATCH_ENDPOINT.path, body, 8, 80)  # warm-up
        return harness.load(url + BATCH_ENDPOINT.path, body, 8, 400).rps * 64


def core_seconds(autoscaling: dict, replica_cpus: float) -> dict:
    """CPU-seconds reserved over the ramp: by the replicas that were running or starting
    each second, and by a fleet fixed at the ramp's peak."""
    samples = autoscaling["samples"]
    spans = np.diff([0.0] + [s["t_s"] for s in samples])
    held = sum(span * (s["replicas"] + s["starting"]) for span, s in zip(spans, samples,
                                                                       strict=True))
    return {"autoscaled": round(held * replica_cpus, 1),
            "fixed_at_peak": round(samples[-1]["t_s"] * autoscaling["max_replicas"]
                                   * replica_cpus, 1)}


def plot(result: dict) -> None:
    names = {"predict_proba": "in-process predict_proba (floor)",
             "embedded_in_process": "embedded job, in process",
             "embedded_command": "embedded job, command",
             "ray_data_1_workers": "Ray Data, 1 actor", "ray_data_2_workers": "Ray Data, 2 actors",
             "score_batch_endpoint": "/score_batch, 64 rows, 8 clients"}
    rates = result["rows_per_s"]
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.barh([names[n] for n in rates][::-1], list(rates.values())[::-1], color="#3f51b5")
    axis.set_xlabel("rows scored per second")
    axis.set_title(f"Scoring {result['rows']:,} applications on {result['machine']['cores']} cores")
    figure.tight_layout()
    figure.savefig(PLOTS / "batch.png", dpi=110)

    samples = result["autoscaling"]["samples"]
    t = [s["t_s"] for s in samples]
    figure, axes = plt.subplots(3, 1, sharex=True, figsize=(7, 5.5))
    axes[0].step(t, [s["replicas"] for s in samples], where="post", label="running")
    axes[0].step(t, [s["starting"] for s in samples], where="post", label="starting",
                 linestyle="--")
    axes[0].set_ylabel("replicas")
    axes[0].legend(loc="upper right")
    axes[1].plot(t, [s["requests_per_s"] for s in samples])
    axes[1].set_ylabel("requests/s")
    axes[2].plot(t, [s["p99_ms"] for s in samples])
    axes[2].set_ylabel("p99 (ms)")
    axes[2].set_xlabel("seconds since the ramp started")
    busy = [s["t_s"] for s in samples if s["phase"] == "busy"]
    for axis in axes:
        axis.axvspan(busy[0] - 1, busy[-1], color="#ffcc80", alpha=0.4, lw=0)
    axes[0].set_title("Ray Serve under one client, 12 clients (shaded), one client")
    figure.tight_layout()
    figure.savefig(PLOTS / "autoscaling.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--model", default=f"{MODEL_NAME}:latest")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plots from --out")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads(args.out.read_text()))
        return
    started = time.perf_counter()
    model = scoring.load(args.model)
    model_load_s = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        frame = data.generate(args.rows, seed=42)[FEATURES]
        frame.insert(0, "row_id", np.arange(args.rows))
        source = work / "applications.parquet"
        frame.to_parquet(source, index=False)
        seconds, rss = {}, {}

        started = time.perf_counter()
        scoring.probabilities(model, pd.read_parquet(source))
        seconds["predict_proba"] = time.perf_counter() - started

        started = time.perf_counter()
        batch.run(source, work / "in_process", model.tag, args.chunk_rows, progress=False)
        seconds["embedded_in_process"] = time.perf_counter() - started

        seconds["embedded_command"], rss["chunked"] = command(source, work / "cmd", model.tag,
                                                              args.chunk_rows)
        _, rss["one_chunk"] = command(source, work / "whole", model.tag, args.rows)

        online = round(online_rows_per_s(work))  # first, while no Ray process is running

        started = time.perf_counter()
        with local_cluster(workers=2, cpus_per_worker=2):
            ray_start_s = time.perf_counter() - started
            for actors in (1, 2):
                started = time.perf_counter()
                ray_batch.run(source, work / f"ray{actors}", model.tag, concurrency=actors)
                seconds[f"ray_data_{actors}_workers"] = time.perf_counter() - started

            from ray import serve

            from ops import ray_serve

            os.environ.update(harness.ANONYMOUS)  # as every other server here: no API key
            url = ray_serve.start(Settings.from_env(), processes.free_port())
            autoscaling = ray_serve.ramp(url, {})
            serve.shutdown()
        autoscaling.update(replica_cpus=ray_serve.REPLICA_CPUS,
                           core_seconds=core_seconds(autoscaling, ray_serve.REPLICA_CPUS))
        rows_per_s = {name: round(args.rows / s) for name, s in seconds.items()}
        rows_per_s["score_batch_endpoint"] = online
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "machine": {"cores": os.cpu_count(), "os": platform.platform(),
                    "python": platform.python_version(), "ray": version("ray"),
                    "pyarrow": version("pyarrow"), "scikit-learn": version("scikit-learn"),
                    "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")},
        "rows": args.rows, "chunk_rows": args.chunk_rows,
        "seconds": {name: round(s, 2) for name, s in seconds.items()},
        "rows_per_s": rows_per_s,
        "share_of_predict_proba": {name: round(r / rows_per_s["predict_proba"], 3)
                                   for name, r in rows_per_s.items()},
        "ray_start_s": round(ray_start_s, 1),
        "model_load_s": round(model_load_s, 2),
        "peak_rss_mib": {"chunked": rss["chunked"], "one_chunk": rss["one_chunk"]},
        "autoscaling": autoscaling,
        "notes": "embedded_command includes interpreter start-up and imports; ray_data_* "
                 "exclude starting the cluster (ray_start_s) but include starting the "
                 "scoring actors and writing the output; one machine, OMP_NUM_THREADS=1",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result)
    print(json.dumps({k: v for k, v in result.items() if k != "autoscaling"}, indent=2))
    print(json.dumps({k: v for k, v in autoscaling.items() if k != "samples"}))


if __name__ == "__main__":
    main()
