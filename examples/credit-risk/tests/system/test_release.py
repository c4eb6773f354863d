"""The release process (ops/release/) run for real: podman images, nginx weights, live traffic.

One environment (nginx on a free loopback port, a container per live release) lives for the
whole module, as production would; the tests run the pipeline against it in order: a first
release, a better candidate, one worse on a slice, one that fails under traffic, and a rerun.

Needs podman, runc and nginx, and root with debootstrap to build the base image once. Outside
CI a missing tool skips these tests with the reason; with CI=true it fails them.
"""

import io
import json
import os
import re
import shutil
import subprocess
from collections import Counter

import bentoml
import faults
import httpx
import pytest
from conftest import require
from rich.console import Console

from ops import podman
from ops.release.canary import Traffic
from ops.release.candidate import Snapshot
from ops.release.environment import Production
from ops.release.run import Outcome, run
from ops.release.stages import STAGES

pytestmark = pytest.mark.timeout(900)
FIRST = Snapshot(rows=20_000, seed=0)
BETTER = Snapshot(rows=40_000, seed=1)  # a newer, larger snapshot


@pytest.fixture(scope="module")
def environment():
    for tool in ["podman", "runc", "nginx"]:
        found = shutil.which(tool) or os.access(f"/usr/sbin/{tool}", os.X_OK)
        require(found, f"{tool} is not installed (apt-get install {tool})")
    if podman.image_id(podman.LOCAL_BASE_IMAGE) is None:
        require(os.geteuid() == 0 and shutil.which("debootstrap") is not None,
                f"building {podman.LOCAL_BASE_IMAGE} needs root and debootstrap")
    environment = Production()
    yield environment
    environment.close()


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    return tmp_path_factory.mktemp("deployments") / "deployments.jsonl"


def release(snapshot, environment, log_path, **options) -> Outcome:
    """One run; approved for real traffic unless the test passes approved_by=None."""
    options.setdefault("approved_by", "the release tests")
    console = Console(file=io.StringIO(), width=200)
    outcome = run(snapshot, environment, log_path, show_progress=False,
                           console=console, **options)
    outcome.output = console.file.getvalue()
    return outcome


def live_traffic(url: str, requests: int = 30) -> Counter:
    """(status, model version) of each of `requests` scoring requests through nginx."""
    seen = Counter()
    bodies = Traffic(url).bodies
    with httpx.Client(timeout=10) as client:
        for body in bodies[:requests]:
            response = client.post(f"{url}/score", json=body)
            seen[response.status_code, response.json().get("model_version")] += 1
    return seen


def pipeline_images() -> set[str]:
    """'name:tag id' of every image the pipeline built (tagged with a 20-digit build key)."""
    listed = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
                            capture_output=True, text=True, check=True).stdout
    return {line for line in listed.splitlines()
            if re.match(r"localhost/credit_risk_service:[0-9a-f]{20} ", line)}


def running_containers() -> set[str]:
    """Names of the release containers podman runs (tests elsewhere use other names)."""
    listed = subprocess.run(["podman", "ps", "--format", "{{.Names}}"], capture_output=True,
                            text=True, check=True).stdout
    return {name for name in listed.split() if name.startswith("credit-risk-")}


def container_exists(container: podman.Container) -> bool:
    return subprocess.run(["podman", "container", "exists", container.name]).returncode == 0


@pytest.fixture(scope="module")
def first(environment, log_path):
    outcome = release(FIRST, environment, log_path)
    assert outcome.decision == "promoted", outcome.reason
    return outcome


@pytest.fixture(scope="module")
def better(first, environment, log_path):
    previous, previous_release = environment.stable, environment.release_of(environment.stable)
    waiting = release(BETTER, environment, log_path, approved_by=None)
    outcome = release(BETTER, environment, log_path)
    outcome.waiting, outcome.previous, outcome.previous_release = (waiting, previous,
                                                                   previous_release)
    return outcome


def test_first_release_goes_to_production_without_a_canary(first, environment):
    assert first.canary is None and "stage canary: skipped" in first.output
    assert first.shadow is None and "stage shadow: skipped" in first.output
    assert environment.release_of(environment.stable) == first.release
    assert podman.image_id(first.release.image) is not None


def test_better_candidate_is_promoted_and_then_serves_all_traffic(better, environment,
                                                                 log_path):
    assert better.decision == "promoted", better.reason
    assert better.gate.passed and better.gate.comparison is not None
    # The shadow stage compared the two releases on mirrored live traffic, unseen by clients.
    assert better.shadow.passed, better.shadow.reasons
    assert all(r["status"] == 200 for r in better.shadow.records)
    evidence = better.shadow.evidence
    assert evidence["pairs"] == evidence["requests"] >= 200, evidence
    assert evidence["versions"] == {"production": [better.previous_release.version],
                                    "candidate": [better.release.version]}
    stats = better.canary.stats
    assert stats["candidate"]["errors"] == 0 and stats["production"]["errors"] == 0
    canary_requests = stats["candidate"]["requests"] + stats["production"]["requests"]
    # nginx's weights: the candidate got its share of the canary traffic, give or take one.
    assert abs(stats["candidate"]["requests"] - canary_requests * 0.2) <= 1, stats
    assert environment.release_of(environment.stable) == better.release
    assert not container_exists(better.previous), "the previous release was not retired"
    assert live_traffic(environment.url) == {(200, better.release.version): 30}


def test_no_candidate_gets_real_traffic_before_a_person_approves_it(better, log_path):
    waiting = better.waiting
    assert waiting.decision == "awaiting_approval", waiting.reason
    assert waiting.shadow.passed and waiting.canary is None
    assert "stage canary: skipped (awaiting approval)" in waiting.output
    # Production served everything while the candidate waited; the approved rerun reused
    # the stored model and the image, and the log says who approved it.
    assert {r["answer"]["model_version"] for r in waiting.shadow.records} == {
        better.previous_release.version}
    assert better.candidate.reused and better.built["image"] is False
    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    decisions = [(e["decision"], e["approved_by"]) for e in entries]
    assert ("awaiting_approval", None) in decisions
    assert ("promoted", "the release tests") in decisions


def test_each_stage_logs_its_duration_and_the_run_is_recorded(better, log_path):
    for stage in STAGES:
        assert f"stage {stage}: ok in " in better.output, better.output
    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    last = entries[-1]
    assert last["decision"] == "promoted" and last["production_after"]["model"] == \
        better.release.model
    assert last["production_before"] == entries[-2]["production_after"]
    assert set(last["stages"]) == set(STAGES) - {"record"}  # written while recording
    print({stage: better.timings[stage] for stage in STAGES})
    assert last["canary"]["stats"]["candidate"]["requests"] > 0
    assert last["shadow"]["passed"] and last["shadow"]["pairs"] >= 200
    assert last["shadow"]["client_failures"] == 0


def test_candidate_worse_on_a_slice_is_stopped_at_the_gate(better, environment, log_path):
    bentos_before = {str(b.tag) for b in bentoml.bentos.list()}
    serving = environment.stable
    outcome = release(faults.LabelsShuffledInBand(rows=40_000, seed=1, band="65+"),
                      environment, log_path)
    assert outcome.decision == "stopped_at_gate"
    assert "on age band 65+" in outcome.reason
    assert not any("overall" in reason for reason in outcome.gate.reasons), \
        "the overall score alone would have let this candidate through"
    assert "stage build: skipped" in outcome.output
    assert {str(b.tag) for b in bentoml.bentos.list()} == bentos_before
    assert environment.stable is serving


def test_candidate_failing_under_traffic_is_rolled_back(better, environment, log_path,
                                                        tmp_path):
    production = environment.stable
    # The same model as production, served by a release whose code fails under load. The
    # shadow stage would stop it first (half its mirrored copies fail): this test is the
    # canary's, so the shadow stage is left out.
    outcome = release(BETTER, environment, log_path, shadow_policy=None,
                      source=faults.faulty_source(tmp_path / "faulty"))
    assert outcome.decision == "rolled_back", outcome.reason
    assert "error rate" in outcome.reason
    canary = [r for r in outcome.canary.records if r["phase"] == "canary"]
    failed = [r for r in canary if r["status"] != 200]
    to_candidate = [r for r in canary if r["role"] == "candidate"]
    # Every failure came from the candidate, and the candidate got only its share.
    assert failed, "the injected fault never showed"
    assert all(r["role"] == "candidate" for r in failed)
    assert len(failed) <= len(to_candidate) <= len(canary) * 0.2 + 1
    # The rollback itself cost nothing: after it, production answers everything.
    after = [r for r in outcome.canary.records if r["phase"] == "after"]
    assert after and all(r["status"] == 200 and r["role"] == "production" for r in after)
    assert environment.stable is production and container_exists(production)
    assert live_traffic(environment.url) == {(200, environment.release_of(production).version): 30}
    print(f"canary: {len(canary)} requests, {len(to_candidate)} to the candidate, "
          f"{len(failed)} failed; {len(after)} after the rollback, none failed")


def test_candidate_deciding_one_band_differently_is_stopped_in_the_shadow(
        better, environment, log_path, tmp_path):
    serving = environment.stable
    version = environment.release_of(serving).version
    # The same model as production, so it passes the gate; its serving code declines more
    # applicants aged 65+ (tests/skewed_service.py), which no earlier stage looks at.
    outcome = release(BETTER, environment, log_path,
                      source=faults.faulty_source(tmp_path / "skewed", "skewed_service"))
    assert outcome.decision == "stopped_at_shadow", outcome.reason
    assert outcome.gate.passed and outcome.canary is None
    assert "age band 65+" in outcome.reason, outcome.reason
    evidence = outcome.shadow.evidence
    assert evidence["decline_rate"]["by_age_band"]["65+"]["low"] > 0.02, evidence
    print(f"shadow stopped the skewed release: {outcome.reason}")
    # No client saw the candidate: every answer during the stage came from production.
    answers = [r["answer"] for r in outcome.shadow.records]
    assert all(r["status"] == 200 for r in outcome.shadow.records)
    assert {a["model_version"] for a in answers} == {version}
    assert "stage canary: skipped (stopped in the shadow stage)" in outcome.output
    assert environment.stable is serving and container_exists(serving)
    # Only this environment's containers count: another release run on the machine (the
    # automation notebook's, run at the same time) starts containers of its own.
    candidates = set(environment.releases) - {serving.name}
    assert candidates, "the release started no candidate"
    assert not candidates & running_containers(), "the stopped candidate still runs"
    assert serving.name in running_containers()
    assert live_traffic(environment.url) == {(200, version): 30}
    last = json.loads(log_path.read_text().splitlines()[-1])
    assert last["decision"] == "stopped_at_shadow" and not last["shadow"]["passed"]
    assert last["production_after"] == last["production_before"]


def test_second_run_on_the_same_inputs_builds_nothing(better, environment, log_path):
    bentos_before = {str(b.tag) for b in bentoml.bentos.list()}
    images_before = pipeline_images()
    assert any(line.startswith(f"{better.release.image} ") for line in images_before)
    outcome = release(BETTER, environment, log_path)
    assert outcome.decision == "unchanged", outcome.reason
    assert outcome.candidate.reused
    assert outcome.built == {"bento": False, "image": False, "key": better.built["key"]}
    assert {str(b.tag) for b in bentoml.bentos.list()} == bentos_before
    assert pipeline_images() == images_before
    assert environment.release_of(environment.stable) == better.release
