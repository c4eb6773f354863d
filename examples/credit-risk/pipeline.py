"""The release pipeline: from a new data snapshot to a promoted (or rolled back) release.

From the example folder, with the virtual environment active (root, for podman):

    python pipeline.py --seed 1 --rows 20000          # train on snapshot seed 1, release it
    python pipeline.py --seed 2 --concept-drift 0.5 --keep-serving

Seven stages, each a function with its inputs and outputs spelled out, run in order:

1. train     Snapshot -> Candidate         train on the snapshot (reuses a stored version)
2. gate      Candidate, production -> Gate  absolute thresholds, and no worse than production
                                            overall or on any age band; stops with the reasons
3. build     Candidate -> Release           bento + container image, keyed by their inputs:
                                            the same inputs build nothing
4. smoke     Release -> Container           start the image, /readyz, one known answer
5. canary    Container, Environment -> Canary   nginx sends a share of the traffic to the
                                            candidate; error rate and latency are compared
6. promote / roll back                      the candidate takes all traffic, or none
7. record    -> deployments.jsonl           one JSON line per run: versions, metrics, decision

"Production" is an Environment: nginx on a loopback port in front of one podman container per
live release. The deployment log says which release is in production, so a later run (or a
restarted machine) brings the same release back before it tries a new one.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import bentoml
import httpx
import pandas as pd
import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import artifact
import data
import train
import versions

HERE = Path(__file__).resolve().parent
CANARY_TEMPLATE = HERE / "deploy" / "canary" / "nginx.conf.template"
BUILD_BASE_IMAGE = HERE / "deploy" / "container" / "build-base-image.sh"
CONTAINERIZE = HERE / "deploy" / "container" / "containerize.sh"
BASE_IMAGE = os.environ.get("BENTO_BASE_IMAGE", "localhost/handbook/python:3.11-bookworm")
DEFAULT_LOG = HERE / "deployments.jsonl"
HOST = "127.0.0.1"
READY_DEADLINE_S = float(os.environ.get("CREDIT_RISK_READY_DEADLINE_S", "120"))
# The smoke test's known request: a fixed application whose answer the model gives in process.
KNOWN_APPLICATION = {
    "annual_income": 48_000, "loan_amount": 12_000, "debt_to_income": 0.25,
    "credit_history_years": 9, "previous_defaults": 0, "age_band": "26-35",
    "employment": "employed", "purpose": "car", "term_months": 36,
}
STAGES = ["train", "gate", "build", "smoke", "canary", "release", "record"]


class StageFailed(RuntimeError):
    """A stage stopped the release; the message says why."""


# ---------------------------------------------------------------------------------------------
# Stage 1: train
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """A data snapshot: here the generator's arguments; with real data, a dated extract."""

    rows: int = 20_000
    seed: int = 0
    covariate_drift: float = 0.0
    concept_drift: float = 0.0

    def spec(self) -> dict:
        return asdict(self)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(training rows, held-out rows), as train.run() draws them."""
        args = (self.covariate_drift, self.concept_drift)
        return (data.generate(self.rows, self.seed, *args),
                data.generate(self.rows // 4, self.seed + 10_000, *args))


@dataclass
class Candidate:
    model: str                 # credit_risk:<version>
    metrics: dict              # on the snapshot's held-out rows, overall and per age band
    held_out: pd.DataFrame = field(repr=False)
    reused: bool               # the version was already stored: nothing was trained


def train_candidate(snapshot: Snapshot) -> Candidate:
    """Train on the snapshot and store the model, or reuse the stored version of the same
    inputs (the version is derived from the data hash, the parameters and the code)."""
    train_frame, held_out = snapshot.frames()
    data_sha256 = data.data_hash(train_frame)
    version = train.model_version(data_sha256, train.DEFAULT_PARAMS)
    try:
        stored, reused = bentoml.models.get(f"{train.MODEL_NAME}:{version}"), True
    except bentoml.exceptions.NotFound:
        model = train.fit(train_frame)
        stored = train.save(model, train.evaluate(model, held_out),
                            train.lineage(snapshot.spec(), data_sha256, train.DEFAULT_PARAMS),
                            version)
        reused = False
    return Candidate(str(stored.tag), stored.info.metadata["metrics"], held_out, reused)


# ---------------------------------------------------------------------------------------------
# Stage 2: gate
# ---------------------------------------------------------------------------------------------
# --8<-- [start:gate]
@dataclass(frozen=True)
class GatePolicy:
    min_roc_auc: float = 0.70        # absolute floor, overall
    max_brier: float = 0.20          # absolute ceiling, overall
    max_drop_overall: float = 0.01   # ROC AUC the candidate may lose against production
    max_drop_per_slice: float = 0.03  # ... on any age band (smaller samples, wider margin)


@dataclass
class Gate:
    passed: bool
    reasons: list[str]
    comparison: pd.DataFrame | None  # ROC AUC per slice: production, candidate, change


def gate(candidate: Candidate, production_model: str | None,
         policy: GatePolicy = GatePolicy()) -> Gate:
    """Pass the candidate only if it meets the floors and is no worse than production,
    overall and on every age band, on the same held-out rows (the new snapshot's)."""
    overall = candidate.metrics["overall"]
    reasons = []
    if overall["roc_auc"] < policy.min_roc_auc:
        reasons.append(f"ROC AUC {overall['roc_auc']} is below the floor {policy.min_roc_auc}")
    if overall["brier"] > policy.max_brier:
        reasons.append(f"Brier score {overall['brier']} is above the ceiling {policy.max_brier}")
    comparison = None
    if production_model and production_model != candidate.model:
        comparison = versions.compare(production_model, candidate.model, candidate.held_out)
        comparison.columns = ["production", "candidate", "change"]
        for slice_name, row in comparison.iterrows():
            allowed = (policy.max_drop_overall if slice_name == "overall"
                       else policy.max_drop_per_slice)
            if row["change"] < -allowed:
                where = "overall" if slice_name == "overall" else f"on age band {slice_name}"
                reasons.append(f"ROC AUC {where} fell by {-row['change']:.4f} against "
                               f"production ({row['production']} -> {row['candidate']}), "
                               f"more than the {allowed} allowed")
    return Gate(not reasons, reasons, comparison)
# --8<-- [end:gate]


# ---------------------------------------------------------------------------------------------
# Stage 3: build
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    model: str   # credit_risk:<version>
    bento: str   # credit_risk_service:<build key>
    image: str   # localhost/credit_risk_service:<build key>

    @property
    def version(self) -> str:
        return self.model.split(":", 1)[1]


def sh(*command, cwd: Path = HERE, **env) -> str:
    """Run a command with this environment's tools on PATH; raise with its output."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run([str(part) for part in command], cwd=cwd, text=True,
                            capture_output=True, timeout=900,
                            env={**os.environ, "PATH": path, "NO_COLOR": "1", **env})
    if result.returncode != 0:
        raise StageFailed(f"{' '.join(map(str, command))} failed:\n"
                          f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout.strip()


def image_id(image: str) -> str | None:
    result = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", image],
                            capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


# --8<-- [start:build-key]
def build_key(model: str, source: Path, base_image_id: str) -> str:
    """A digest of everything the image is made of: the model, every file the bentofile
    includes (code, requirements.txt) and the base image. Same key, same image."""
    bentofile = source / "bentofile.yaml"
    digest = hashlib.sha256(f"{model}\n{base_image_id}\n".encode())
    digest.update(bentofile.read_bytes())
    for name in sorted(yaml.safe_load(bentofile.read_text())["include"]):
        for path in sorted(source.glob(name)):
            digest.update(f"{path.relative_to(source)}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:20]


def build(candidate: Candidate, source: Path = HERE) -> tuple[Release, dict]:
    """The bento and the image for the candidate, built only if their key is new."""
    if image_id(BASE_IMAGE) is None:
        sh(BUILD_BASE_IMAGE, BASE_IMAGE)  # once per machine; needs root and debootstrap
    key = build_key(candidate.model, source, image_id(BASE_IMAGE))
    release = Release(candidate.model, f"credit_risk_service:{key}",
                      f"localhost/credit_risk_service:{key}")
    built = {"bento": False, "image": False, "key": key}
    try:
        bentoml.bentos.get(release.bento)
    except bentoml.exceptions.NotFound:
        sh(sys.executable, "-m", "bentoml", "build", "--version", key, cwd=source,
           CREDIT_RISK_MODEL=candidate.model, BENTO_BASE_IMAGE=BASE_IMAGE)
        built["bento"] = True
    if image_id(release.image) is None:
        sh(CONTAINERIZE, release.bento, release.image)
        built["image"] = True
    return release, built
# --8<-- [end:build-key]


# ---------------------------------------------------------------------------------------------
# Containers and the environment they serve in
# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Container:
    """One podman container serving a release on a loopback port."""

    release: Release
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def upstream(self) -> str:
        return f"{HOST}:{self.port}"


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def container_logs(name: str) -> str:
    result = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
    return (result.stdout + result.stderr)[-3000:]


def start_container(release: Release, role: str) -> Container:
    """`podman run` the release's image on a free loopback port and wait for /readyz."""
    container = Container(release, f"credit-risk-{role}-{uuid.uuid4().hex[:8]}", free_port())
    started = subprocess.run(
        ["podman", "run", "--detach", "--name", container.name, "--runtime", "runc",
         "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
         # The pipeline's own traffic carries no key. A real deployment mounts the keys file
         # as deploy/k8s does and drops this line.
         "--env", "CREDIT_RISK_ALLOW_ANONYMOUS=1", "--env", "OMP_NUM_THREADS=1",
         "--publish", f"{HOST}:{container.port}:3000", release.image],
        capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        raise StageFailed(f"podman run {release.image} failed: {started.stderr[-2000:]}")
    try:
        deadline = time.monotonic() + READY_DEADLINE_S
        while not ready(container.url):
            state = subprocess.run(
                ["podman", "inspect", "--format", "{{.State.Running}}", container.name],
                capture_output=True, text=True).stdout.strip()
            if state != "true":
                raise StageFailed(f"container {container.name} exited:\n"
                                  f"{container_logs(container.name)}")
            if time.monotonic() > deadline:
                raise StageFailed(f"container {container.name} not ready in "
                                  f"{READY_DEADLINE_S:.0f} s:\n{container_logs(container.name)}")
            time.sleep(0.3)
    except BaseException:
        stop_container(container)
        raise
    return container


def stop_container(container: Container | None) -> None:
    if container is not None:
        subprocess.run(["podman", "rm", "--force", "--time", "5", container.name],
                       capture_output=True, timeout=60)


def worker_pids(master: int) -> set[int]:
    """The nginx master's child processes (its workers), from /proc."""
    children = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                children.add(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return children


class Environment:
    """Production on this machine: nginx on a loopback port, weighting the live containers.

    `route()` rewrites nginx's upstream weights and reloads it gracefully: requests in flight
    finish on the old workers, and `route()` returns once every old worker has exited, so
    from then on every request follows the new weights.
    """

    def __init__(self, port: int | None = None, run_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="credit-risk-release-"))
        self.run_dir.chmod(0o755)  # nginx workers run as nobody when started by root
        self.nginx: subprocess.Popen | None = None
        self.stable: Container | None = None   # the release taking all traffic between runs
        self.generation = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.run_dir / "access.log"

    def render(self, weights: dict[str, int]) -> Path:
        upstreams = "\n".join(f"        server {address} weight={weight};"
                              for address, weight in weights.items())
        text = CANARY_TEMPLATE.read_text()
        for name, value in {"RUN_DIR": str(self.run_dir), "PORT": str(self.port),
                            "UPSTREAMS": upstreams,
                            "GENERATION": str(self.generation)}.items():
            text = text.replace("${" + name + "}", value)
        conf = self.run_dir / "nginx.conf"
        conf.write_text(text)
        return conf

    def route(self, weights: dict[Container, int]) -> None:
        """Send each container its share of the traffic (weights are relative)."""
        self.generation += 1
        conf = self.render({c.upstream: w for c, w in weights.items() if w > 0})
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian's, off a user's PATH
        command = [nginx, "-c", str(conf), "-p", str(self.run_dir),
                   "-e", str(self.run_dir / "error.log")]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise StageFailed(f"nginx -t rejected {conf}:\n{check.stderr}")
        if self.nginx is None or self.nginx.poll() is not None:
            self.nginx = subprocess.Popen(command, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.wait(lambda: ready(self.url), "nginx to answer /readyz")
            return
        old_workers = worker_pids(self.nginx.pid)
        self.nginx.send_signal(signal.SIGHUP)  # graceful reload
        self.wait(lambda: not (old_workers & worker_pids(self.nginx.pid))
                  and worker_pids(self.nginx.pid), "nginx's old workers to finish")

    def wait(self, condition, what: str, deadline_s: float = 30) -> None:
        deadline = time.monotonic() + deadline_s
        while not condition():
            if self.nginx.poll() is not None:
                raise StageFailed(f"nginx exited: {(self.run_dir / 'error.log').read_text()}")
            if time.monotonic() > deadline:
                raise StageFailed(f"timed out after {deadline_s} s waiting for {what}")
            time.sleep(0.05)

    def serve(self, container: Container) -> None:
        """Make `container` the stable release taking all traffic."""
        self.route({container: 100})
        self.stable = container

    def close(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.terminate()
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.nginx.pid, signal.SIGKILL)
                self.nginx.wait()
        stop_container(self.stable)
        self.stable = None


# ---------------------------------------------------------------------------------------------
# Stage 4: smoke test
# ---------------------------------------------------------------------------------------------
def expected_answer(model_tag: str) -> dict:
    """What the model says in this process about KNOWN_APPLICATION."""
    stored = bentoml.models.get(model_tag)
    model = artifact.load_verified(stored.path, stored.info.metadata["artifact"]["sha256"])
    probability = float(model.predict_proba(pd.DataFrame([KNOWN_APPLICATION]))[0, 1])
    decision = "decline" if probability > stored.info.metadata["decision_threshold"] else "approve"
    return {"probability_of_default": round(probability, 3), "decision": decision,
            "model_version": stored.tag.version}


def smoke_test(release: Release) -> Container:
    """Start the image; it must be ready and give the known answer. Returns the running
    container (the canary uses it); stops it on failure."""
    container = start_container(release, "candidate")
    try:
        response = httpx.post(f"{container.url}/score", json=KNOWN_APPLICATION, timeout=10)
        if response.status_code != 200:
            raise StageFailed(f"smoke test: /score answered {response.status_code}: "
                              f"{response.text[:300]}")
        expected = expected_answer(release.model)
        answer = {key: response.json().get(key) for key in expected}
        if answer != expected:
            raise StageFailed(f"smoke test: the container answered {answer}, "
                              f"the model in process {expected}")
    except BaseException:
        stop_container(container)
        raise
    return container


# ---------------------------------------------------------------------------------------------
# Stage 5: canary
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CanaryPolicy:
    share: int = 20                 # percent of the traffic the candidate gets
    requests: int = 300             # live requests sent during the canary, at most
    max_seconds: float = 60         # ... and for at most this long
    min_candidate_requests: int = 20  # fewer is no evidence: roll back
    check_every: int = 20           # requests between looks at the access log
    max_error_rate: float = 0.01    # the SLO: at most 1 % of candidate requests fail
    latency_slo_ms: float = 250     # p95 the SLO allows
    max_latency_ratio: float = 1.5  # and how much slower than production the candidate may be
    verify_requests: int = 30       # requests after the switch, to check who serves


@dataclass
class Canary:
    promote: bool
    reasons: list[str]
    share: int             # percent of the traffic the candidate had
    stats: dict            # per role: requests, errors, error_rate, p50_ms, p95_ms
    records: list[dict]    # every live request: phase, role, status, upstream, version, ms, t
    seconds: float


class Traffic:
    """Live traffic through nginx: one request after another, bounded in count and time.

    On a real service this is the users; here varied applications from the data generator
    (varied, so the service's answer cache does not flatter the latency).
    """

    def __init__(self, url: str, roles: dict[str, str] | None = None, seed: int = 123) -> None:
        self.url = url
        self.roles = roles or {}  # upstream address -> "production" or "candidate"
        self.bodies = data.generate(500, seed)[data.FEATURES].to_dict("records")
        self.records: list[dict] = []
        self.sent = 0
        self.started = time.monotonic()

    def send(self, count: int, phase: str, max_seconds: float = 60) -> None:
        deadline = time.monotonic() + max_seconds
        # No keep-alive: after a reload, each request meets nginx's current workers.
        with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for _ in range(count):
                if time.monotonic() > deadline:
                    break
                body = self.bodies[self.sent % len(self.bodies)]
                self.sent += 1
                started = time.monotonic()
                try:
                    response = client.post(f"{self.url}/score", json=body)
                    status, upstream = response.status_code, response.headers.get("x-upstream", "")
                    version = response.json().get("model_version") if status == 200 else None
                except httpx.HTTPError as error:
                    status, upstream, version = repr(error), "", None
                self.records.append({
                    "phase": phase, "role": self.roles.get(upstream, ""), "status": status,
                    "upstream": upstream, "version": version,
                    "ms": round((time.monotonic() - started) * 1000, 2),
                    "t": round(started - self.started, 3)})


def read_access_log(path: Path, offset: int) -> list[dict]:
    """nginx's JSON access-log lines from byte `offset` on, one entry per upstream attempt."""
    attempts = []
    with open(path, "rb") as file:
        file.seek(offset)
        for line in file.read().decode().splitlines():
            entry = json.loads(line)
            if entry["uri"] != "/score":
                continue
            for address, status, seconds in zip(entry["upstream"].split(", "),
                                                 entry["upstream_status"].split(", "),
                                                 entry["upstream_time"].split(", "),
                                                 strict=False):
                attempts.append({"upstream": address, "status": status,
                                 "ms": float(seconds) * 1000 if seconds != "-" else None})
    return attempts


def summarize(attempts: list[dict]) -> dict:
    errors = sum(1 for a in attempts if not a["status"].isdigit() or int(a["status"]) >= 500)
    latencies = [a["ms"] for a in attempts if a["ms"] is not None]
    percentiles = (statistics.quantiles(latencies, n=100, method="inclusive")
                   if len(latencies) >= 2 else [None] * 99)
    return {"requests": len(attempts), "errors": errors,
            "error_rate": round(errors / len(attempts), 4) if attempts else None,
            "p50_ms": percentiles[49] and round(percentiles[49], 2),
            "p95_ms": percentiles[94] and round(percentiles[94], 2)}


# --8<-- [start:canary-judge]
def judge(production: dict, candidate: dict, policy: CanaryPolicy, final: bool) -> list[str]:
    """Reasons the candidate breaches its SLO next to production; empty means healthy.

    Errors count against at least `min_candidate_requests`, so one early failure already
    breaches a 1 % budget: the canary stops there instead of waiting for more.
    """
    reasons = []
    errors, requests = candidate["errors"], candidate["requests"]
    if errors / max(requests, policy.min_candidate_requests) > policy.max_error_rate:
        reasons.append(f"error rate {errors} of {requests} is above the SLO's "
                       f"{policy.max_error_rate:.0%} (production: {production['errors']} of "
                       f"{production['requests']})")
    p95, base = candidate["p95_ms"], production["p95_ms"] or 0
    if (requests >= policy.min_candidate_requests and p95 > policy.latency_slo_ms
            and p95 > policy.max_latency_ratio * base):
        reasons.append(f"p95 latency {p95:.0f} ms is above the SLO's {policy.latency_slo_ms:.0f}"
                       f" ms and {policy.max_latency_ratio}x production's {base:.0f} ms")
    if final and not reasons and requests < policy.min_candidate_requests:
        reasons.append(f"only {requests} requests reached the candidate; "
                       f"{policy.min_candidate_requests} are needed to judge it")
    return reasons
# --8<-- [end:canary-judge]


def canary(environment: Environment, candidate: Container,
           policy: CanaryPolicy = CanaryPolicy()) -> tuple[Canary, "Traffic"]:
    """Route `share` % of the live traffic to the candidate, watch both in nginx's access
    log, and stop early once the candidate has breached; the decision is in the result."""
    production = environment.stable
    started = time.monotonic()
    traffic = Traffic(environment.url, {production.upstream: "production",
                                        candidate.upstream: "candidate"})
    offset = environment.access_log.stat().st_size
    environment.route({production: 100 - policy.share, candidate: policy.share})
    while traffic.sent < policy.requests and time.monotonic() - started < policy.max_seconds:
        traffic.send(policy.check_every, "canary", policy.max_seconds)
        attempts = read_access_log(environment.access_log, offset)
        stats = {role: summarize([a for a in attempts if a["upstream"] == c.upstream])
                 for role, c in [("production", production), ("candidate", candidate)]}
        if judge(stats["production"], stats["candidate"], policy, final=False):
            break  # breached: every further request would be one more at risk
    reasons = judge(stats["production"], stats["candidate"], policy, final=True)
    return Canary(not reasons, reasons, policy.share, stats, traffic.records,
                  round(time.monotonic() - started, 2)), traffic


# ---------------------------------------------------------------------------------------------
# Stage 6: promote or roll back
# ---------------------------------------------------------------------------------------------
def promote(environment: Environment, candidate: Container, traffic: Traffic,
            policy: CanaryPolicy = CanaryPolicy()) -> None:
    """All traffic to the candidate, then retire the previous release."""
    previous = environment.stable
    environment.serve(candidate)
    traffic.send(policy.verify_requests, "after")
    stop_container(previous)


def roll_back(environment: Environment, candidate: Container, traffic: Traffic,
              policy: CanaryPolicy = CanaryPolicy()) -> None:
    """All traffic back to production, then stop the candidate."""
    environment.serve(environment.stable)
    traffic.send(policy.verify_requests, "after")
    stop_container(candidate)


# ---------------------------------------------------------------------------------------------
# Stage 7: record, and the deployment log as the record of what is in production
# ---------------------------------------------------------------------------------------------
def production_release(log_path: Path) -> Release | None:
    """The release the last run left in production, from the deployment log."""
    if not log_path.is_file():
        return None
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    for entry in reversed(lines):
        if entry.get("production_after"):
            return Release(**entry["production_after"])
    return None


def record(log_path: Path, entry: dict) -> None:
    """Append one run to the deployment log (JSON lines)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(json.dumps(entry, default=str) + "\n")


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------
class Stages:
    """Times each stage, prints one log line per stage, and shows progress with rich."""

    def __init__(self, show_progress: bool, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, log_path=False)
        self.timings: dict[str, float] = {}
        self.progress = (Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  TimeElapsedColumn(), console=self.console, transient=False)
                         if show_progress else None)
        self.tasks = ({name: self.progress.add_task(f"[dim]{name}", total=1, start=False)
                       for name in STAGES} if self.progress else {})

    @contextmanager
    def stage(self, name: str):
        started = time.monotonic()
        if self.progress:
            self.progress.start_task(self.tasks[name])
            self.progress.update(self.tasks[name], description=f"[bold]{name}")
        outcome = {"status": "ok", "detail": ""}
        try:
            yield outcome
        except BaseException as error:
            outcome["status"] = "failed"
            outcome["detail"] = outcome["detail"] or str(error).splitlines()[0]
            raise
        finally:
            seconds = round(time.monotonic() - started, 2)
            self.timings[name] = seconds
            if self.progress:
                self.progress.update(self.tasks[name], completed=1,
                                     description=f"{name} ({outcome['status']})")
            line = f"stage {name}: {outcome['status']} in {seconds:.1f} s"
            self.console.log(line + (f" ({outcome['detail']})" if outcome["detail"] else ""))

    def skip(self, name: str, why: str) -> None:
        self.timings[name] = 0.0
        if self.progress:
            self.progress.start_task(self.tasks[name])
            self.progress.update(self.tasks[name], completed=1,
                                 description=f"[dim]{name} (skipped)")
        self.console.log(f"stage {name}: skipped ({why})")

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()


@dataclass
class Outcome:
    decision: str        # promoted | rolled_back | stopped_at_gate | unchanged | failed
    reason: str
    candidate: Candidate | None = None
    gate: Gate | None = None
    release: Release | None = None
    built: dict | None = None
    canary: Canary | None = None
    timings: dict = field(default_factory=dict)
    log_entry: dict = field(default_factory=dict)


def run(snapshot: Snapshot, environment: Environment, log_path: Path = DEFAULT_LOG,
        source: Path = HERE, gate_policy: GatePolicy = GatePolicy(),
        canary_policy: CanaryPolicy = CanaryPolicy(), show_progress: bool = True,
        console: Console | None = None, until: str | None = None) -> Outcome:
    """Run the stages on `snapshot` against `environment` and log the run. `until` names
    a stage (gate, build or smoke) to stop after, leaving production alone: a CI job that
    only builds and checks the image."""
    production = production_release(log_path)
    if until is None and production and (environment.stable is None
                       or environment.stable.release != production):
        stop_container(environment.stable)
        environment.serve(start_container(production, "production"))  # bring production back
    outcome = Outcome("failed", "")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with Stages(show_progress, console) as stages:
        try:
            decide(snapshot, environment, production, source, gate_policy, canary_policy,
                   stages, outcome, until)
        except Exception as error:  # any stage's failure is a failed run, and is logged
            outcome.decision, outcome.reason = "failed", f"{type(error).__name__}: {error}"
        outcome.timings = stages.timings
        with stages.stage("record") as done:
            outcome.log_entry = log_entry(outcome, snapshot, production, environment,
                                          started_at)
            record(log_path, outcome.log_entry)
            done["detail"] = f"{outcome.decision} -> {log_path}"
    outcome.log_entry["stages"]["record"] = stages.timings["record"]
    return outcome


def decide(snapshot, environment, production, source, gate_policy, canary_policy,
           stages: Stages, outcome: Outcome, until: str | None = None) -> None:
    def stop_after(stage: str) -> bool:
        if until != stage:
            return False
        outcome.decision, outcome.reason = f"stopped_after_{stage}", f"asked to stop after {stage}"
        for name in STAGES[STAGES.index(stage) + 1:-1]:
            stages.skip(name, f"--until {stage}")
        return True

    with stages.stage("train") as done:
        outcome.candidate = candidate = train_candidate(snapshot)
        done["detail"] = f"{candidate.model}{' (stored already)' if candidate.reused else ''}"
    with stages.stage("gate") as done:
        outcome.gate = checked = gate(candidate, production.model if production else None,
                                      gate_policy)
        done["detail"] = "passed" if checked.passed else "; ".join(checked.reasons)
    if not checked.passed:
        outcome.decision = "stopped_at_gate"
        outcome.reason = "; ".join(checked.reasons)
        for name in ["build", "smoke", "canary", "release"]:
            stages.skip(name, "stopped at the gate")
        return
    if stop_after("gate"):
        return
    with stages.stage("build") as done:
        outcome.release, outcome.built = release, built = build(candidate, source)
        done["detail"] = (f"{release.image}: bento {'built' if built['bento'] else 'reused'}, "
                          f"image {'built' if built['image'] else 'reused'}")
    if stop_after("build"):
        return
    if production == release:
        outcome.decision, outcome.reason = "unchanged", f"{release.image} is already in production"
        for name in ["smoke", "canary", "release"]:
            stages.skip(name, "already in production")
        return
    with stages.stage("smoke") as done:
        container = smoke_test(release)
        done["detail"] = f"{container.url} gave the known answer"
    if stop_after("smoke"):
        stop_container(container)
        return
    if environment.stable is None:
        stages.skip("canary", "no release in production yet: nothing to compare with")
        with stages.stage("release") as done:
            environment.serve(container)
            done["detail"] = f"first release: {release.version} takes all traffic"
        outcome.decision, outcome.reason = "promoted", "first release"
        return
    try:
        with stages.stage("canary") as done:
            outcome.canary, traffic = canary(environment, container, canary_policy)
            done["detail"] = ("healthy" if outcome.canary.promote
                              else "; ".join(outcome.canary.reasons))
        with stages.stage("release") as done:
            if outcome.canary.promote:
                promote(environment, container, traffic, canary_policy)
                outcome.decision = "promoted"
                outcome.reason = f"canary healthy at {canary_policy.share} % of traffic"
            else:
                roll_back(environment, container, traffic, canary_policy)
                outcome.decision = "rolled_back"
                outcome.reason = "; ".join(outcome.canary.reasons)
            done["detail"] = f"{outcome.decision}: {environment.stable.release.version} serves"
    except BaseException:
        if environment.stable is not container:  # whatever failed, production keeps serving
            environment.serve(environment.stable)
            stop_container(container)
        raise


def log_entry(outcome: Outcome, snapshot: Snapshot, production: Release | None,
              environment: Environment, started_at: str) -> dict:
    """The deployment log's line for this run."""
    serving = environment.stable.release if environment.stable else production
    canary_result = outcome.canary
    return {
        "run_id": uuid.uuid4().hex[:12],
        "started": started_at,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "snapshot": snapshot.spec(),
        "candidate": asdict(outcome.release) if outcome.release else (
            {"model": outcome.candidate.model} if outcome.candidate else None),
        "metrics": outcome.candidate.metrics["overall"] if outcome.candidate else None,
        "gate": {"passed": outcome.gate.passed, "reasons": outcome.gate.reasons,
                 "roc_auc": (outcome.gate.comparison.to_dict(orient="index")
                             if outcome.gate.comparison is not None else None)}
        if outcome.gate else None,
        "built": outcome.built,
        "canary": {"share": canary_result.share,
                   "seconds": canary_result.seconds, "stats": canary_result.stats,
                   "client_failures": sum(1 for r in canary_result.records
                                          if r["status"] != 200),
                   "reasons": canary_result.reasons} if canary_result else None,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "production_before": asdict(production) if production else None,
        "production_after": asdict(serving) if serving else None,
        "stages": dict(outcome.timings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in fields(Snapshot):  # --rows, --seed, --covariate-drift, --concept-drift
        parser.add_argument(f"--{option.name.replace('_', '-')}", type=type(option.default),
                            default=option.default)
    parser.add_argument("--log", type=Path, default=DEFAULT_LOG, help="the deployment log")
    parser.add_argument("--port", type=int, default=8080, help="nginx's loopback port")
    parser.add_argument("--share", type=int, default=CanaryPolicy.share,
                        help="percent of the traffic the canary gets")
    parser.add_argument("--until", choices=["gate", "build", "smoke"],
                        help="stop after this stage and leave production alone")
    parser.add_argument("--keep-serving", action="store_true",
                        help="keep nginx and production running until Ctrl-C")
    args = parser.parse_args()
    snapshot = Snapshot(**{option.name: getattr(args, option.name) for option in fields(Snapshot)})
    environment = Environment(port=args.port)
    outcome = None
    try:
        outcome = run(snapshot, environment, args.log,
                      canary_policy=CanaryPolicy(share=args.share), until=args.until)
        print(f"{outcome.decision}: {outcome.reason}")
        if args.keep_serving and environment.stable:
            print(f"serving {environment.stable.release.image} on {environment.url} "
                  "(Ctrl-C to stop)", flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            while environment.nginx.poll() is None:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        environment.close()
    succeeded = {"promoted", "unchanged", f"stopped_after_{args.until}"}
    sys.exit(0 if outcome and outcome.decision in succeeded else 1)


if __name__ == "__main__":
    main()
