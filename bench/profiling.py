"""Where a /score request's time goes inside the flagship's worker, by stage.

    python bench/profiling.py [--requests 3000] [--out bench/results]

`make bench` runs this after the comparison (bench/run.py). It starts the flagship as the
comparison does, attaches py-spy to each worker process (the processes that run the
service; the `bentoml serve` process only supervises them), loads /score with `hey` at each
concurrency and sorts py-spy's samples (collapsed stacks, running threads only) into the
stages a request passes. Writes profile.json to --out and profile.png to --plots.

py-spy reads the worker's memory with ptrace: run it as root, or allow it with
`sysctl kernel.yama.ptrace_scope=0`.
"""

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import harness
from harness import Server
from ops import processes

CONCURRENCIES = [1, 32]
REQUESTS = 3000
RATE_HZ = 200
ATTACH_DEADLINE_S = 15
STOP_DEADLINE_S = 30
WORKER_MODULE = b"_bentoml_impl.worker.service"

# The stages in the order a request meets them (the model runs in the batcher's thread).
EVENT_LOOP = "Event loop and sockets (uvloop)"
HTTP = "HTTP parsing and writing (uvicorn, httptools)"
BENTOML_MIDDLEWARE = "BentoML's middleware (metrics, tracing, access log, timeout)"
FLAGSHIP_MIDDLEWARE = "The flagship's middleware (credit_risk/middleware, audit log)"
ROUTING = "BentoML's app: routing and request context (starlette)"
PARSING = "Request parsing and pydantic validation"
BATCHING = "Batching: queue and hand-over to the model thread"
DATAFRAME = "DataFrame construction"
MODEL = "Model call (sklearn predict_proba)"
ANSWERS = "Answer objects (Score, request id)"
PREDICTION_LOG = "Prediction log and metrics (telemetry, jsonl_log)"
SERIALISING = "Response serialisation"
WAITING = "Model thread waiting for work"
OTHER = "Other"
CATEGORIES = [EVENT_LOOP, HTTP, BENTOML_MIDDLEWARE, FLAGSHIP_MIDDLEWARE, ROUTING, PARSING,
              BATCHING, DATAFRAME, MODEL, ANSWERS, PREDICTION_LOG, SERIALISING, WAITING, OTHER]


@dataclass(frozen=True)
class Rule:
    """A frame `function (path)` matching `frame` (and, if given, its caller matching
    `caller`) belongs to `category`."""

    category: str
    frame: str
    caller: str | None = None


BENTO_IO = r"(_bentoml_impl/serde|_bentoml_sdk/io_models)\.py"
# Tried in this order on each frame, from the leaf towards the root: the innermost frame that
# a rule names decides the stage, so library code (pandas, pydantic, json, logging,
# prometheus_client) counts for the stage that called it.
RULES = [
    Rule(DATAFRAME, r"^(DataFrame\.__init__|BaseModel\.model_dump) \(",
         caller=r"^score[ .].*credit_risk/scoring\.py"),
    Rule(MODEL, r"^probabilities \(.*credit_risk/scoring\.py"),
    Rule(MODEL, r"/sklearn/"),
    Rule(ANSWERS, r"credit_risk/scoring\.py"),
    Rule(PREDICTION_LOG, r"credit_risk/telemetry\.py"),
    Rule(BATCHING, r"credit_risk/batching\.py|concurrent/futures/_base\.py|asyncio/futures\.py"),
    Rule(BATCHING, r"^(_WorkItem\.run|CreditRisk\.score_and_record) \("),
    # Blocked on its queue, yet sampled: py-spy's idle check misses some waits.
    Rule(WAITING, r"^_worker \(.*concurrent/futures/thread\.py"),
    Rule(PARSING, r"^CreditRisk\.score \("),
    Rule(PARSING, rf"^\S*(from_http_request|parse_request|deserialize\w*|_decode) \(.*{BENTO_IO}"),
    Rule(SERIALISING, rf"^\S*(to_http_response|serialize\w*|_encode) \(.*{BENTO_IO}"),
    Rule(SERIALISING, r"starlette/responses\.py"),
    Rule(FLAGSHIP_MIDDLEWARE, r"credit_risk/(middleware/|openapi\.py)"),
    Rule(BENTOML_MIDDLEWARE, r"bentoml/_internal/server/|/opentelemetry/"),
    Rule(BENTOML_MIDDLEWARE, r"starlette/(applications|middleware/errors)\.py"),
    Rule(ROUTING, r"/starlette/|_bentoml_impl/server/|/anyio/"),
    Rule(HTTP, r"/uvicorn/|/httptools/|/h11/"),
    Rule(EVENT_LOOP, r"/asyncio/|/uvloop/"),
]

FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::\d+)?\)$")


def parse(line: str) -> tuple[list[str], int]:
    """One collapsed-stack line `root;...;leaf count`: its frames without line numbers
    (`function (path)`, root first) and its sample count."""
    stack, count = line.rstrip("\n").rsplit(" ", 1)
    frames = []
    for frame in stack.split(";"):
        match = FRAME.match(frame)
        frames.append(f"{match['function']} ({match['path']})" if match else frame)
    return frames, int(count)


def categorise(frames: list[str], rules: list[Rule] = RULES) -> str:
    """The stage of one stack (root first): the first rule matching the innermost frame
    that any rule matches; OTHER if none does."""
    for depth in range(len(frames) - 1, -1, -1):
        caller = frames[depth - 1] if depth else ""
        for rule in rules:
            if re.search(rule.frame, frames[depth]) and (
                    rule.caller is None or re.search(rule.caller, caller)):
                return rule.category
    return OTHER


def short_path(frame: str) -> str:
    """A frame with its path cut to the package part: site-packages/, the standard library,
    or the example's folder."""
    for prefix in (r"/.*/site-packages/", r"/.*/lib/python3\.\d+/", r"/.*/examples/[^/]+/"):
        frame = re.sub(rf"\({prefix}", "(", frame, count=1)
    return frame


def aggregate(lines: list[str], requests: int, rate_hz: float, rules: list[Rule] = RULES,
              top: int = 10) -> dict:
    """Samples by stage (in CATEGORIES order) and the `top` leaf functions by self time.

    ms_per_request is sampled thread time over requests: samples / rate_hz / requests.
    """
    stages, leaves = Counter(), Counter()
    for line in filter(str.strip, lines):
        frames, count = parse(line)
        stages[categorise(frames, rules)] += count
        leaves[short_path(frames[-1])] += count
    total = sum(stages.values())

    def share(count: int) -> float:
        return round(100 * count / total, 1) if total else 0.0

    return {
        "samples": total,
        "categories": [{"name": name, "samples": stages[name], "share_pct": share(stages[name]),
                        "ms_per_request": round(stages[name] / rate_hz / requests * 1000, 3)}
                       for name in CATEGORIES],
        "top_leaves": [{"frame": frame, "samples": count, "share_pct": share(count)}
                       for frame, count in leaves.most_common(top)],
    }


def workers(server: subprocess.Popen) -> list[int]:
    """The pids of the BentoML worker processes under a `bentoml serve` process."""
    def found() -> list[int]:
        return sorted(pid for pid in processes.process_tree(server.pid)
                      if WORKER_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes())
    processes.wait_until(found, ATTACH_DEADLINE_S, "BentoML worker process",
                         alive=lambda: server.poll() is None)
    return found()


def spy(pid: int, raw: Path) -> subprocess.Popen:
    """py-spy recording `pid` into `raw` (collapsed stacks) until SIGINT; returns once it
    samples."""
    log = raw.with_suffix(".log")
    with open(log, "w") as output:
        recorder = subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw",
             "--full-filenames", "--rate", str(RATE_HZ), "--pid", str(pid), "--output",
             str(raw)], stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        processes.wait_until(lambda: "Sampling process" in log.read_text(), ATTACH_DEADLINE_S,
                             f"py-spy on pid {pid} (log: {log})",
                             alive=lambda: recorder.poll() is None)
    except BaseException:
        processes.stop(recorder)
        raise
    return recorder


def recorded(recorder: subprocess.Popen, raw: Path) -> list[str]:
    """Stop a py-spy recording (SIGINT makes it write its file) and read its lines."""
    recorder.send_signal(signal.SIGINT)
    try:
        recorder.wait(timeout=STOP_DEADLINE_S)
    finally:
        processes.stop(recorder)
    if recorder.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed (log: {raw.with_suffix('.log')})")
    return raw.read_text().splitlines()


def measure(server: Server, body: Path, run_dir: Path, requests: int = REQUESTS) -> list[dict]:
    """Start `server`, then for each concurrency: record its workers under a fixed load."""
    runs = []
    with harness.launched(server, run_dir) as (url, process):
        pids = workers(process)
        harness.load(url + server.path, body, 8, 200)  # warm-up, as harness.sweep does
        for concurrency in CONCURRENCIES:
            raws = [run_dir / f"c{concurrency}-{pid}.txt" for pid in pids]
            recorders = []
            try:
                recorders = [spy(pid, raw) for pid, raw in zip(pids, raws, strict=True)]
                point = harness.load(url + server.path, body, concurrency, requests)
                lines = [line for recorder, raw in zip(recorders, raws, strict=True)
                         for line in recorded(recorder, raw)]
            finally:
                for recorder in recorders:
                    processes.stop(recorder)
            runs.append({"concurrency": concurrency, "load": asdict(point),
                         **aggregate(lines, point.requests, RATE_HZ)})
    return runs


def record(servers: list[Server], machine: dict, out: Path, plots: Path,
           requests: int = REQUESTS) -> dict:
    """Profile the flagship (the "batching" configuration of `servers`); write profile.json
    to `out` and profile.png to `plots`."""
    server = next(s for s in servers if s.name == "batching")
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        runs = measure(server, harness.bodies(Path(tmp))["single"], Path(tmp), requests)
    profile = {"machine": {**machine, "profiler": f"py-spy {version('py-spy')}"},
               "server": {"name": server.name, "label": server.label, "path": server.path},
               "requests": requests, "rate_hz": RATE_HZ, "categories": CATEGORIES,
               "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(profile, indent=2) + "\n")
    plot(profile, plots)
    return profile


def plot(profile: dict, folder: Path) -> None:
    """profile.png: each stage's CPU milliseconds per request, one bar per concurrency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = profile["categories"][::-1]
    figure, axes = plt.subplots(figsize=(8, 5))
    height = 0.8 / len(profile["runs"])
    for index, run in enumerate(profile["runs"]):
        ms = {c["name"]: c["ms_per_request"] for c in run["categories"]}
        axes.barh([i + index * height for i in range(len(names))], [ms[n] for n in names],
                  height=height, label=f"c={run['concurrency']}")
    axes.set_yticks([i + height / 2 for i in range(len(names))], names, fontsize=7)
    axes.set_xlabel("sampled thread ms per request (event loop and model threads)")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(folder / "profile.png", dpi=110)
    plt.close(figure)


def main() -> None:
    import run  # run.py imports this module: its servers and machine description, here only

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS, help="per concurrency")
    parser.add_argument("--out", type=Path, default=harness.BENCH / "results")
    parser.add_argument("--plots", type=Path, default=harness.ROOT / "docs/img/benchmarks")
    args = parser.parse_args()
    profile = record(run.SERVERS, run.machine(), args.out, args.plots, args.requests)
    for result in profile["runs"]:
        print(f"c={result['concurrency']}: {result['samples']} samples")
        for category in result["categories"]:
            print(f"  {category['share_pct']:5.1f} %  {category['ms_per_request']:6.3f} ms"
                  f"  {category['name']}")


if __name__ == "__main__":
    main()
