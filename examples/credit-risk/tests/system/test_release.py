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


def container_exists(container: podman.Container) -> bool:
    return subprocess.run(["podman", "container", "exists", container.name]).returncode == 0


@pytest.fixture(scope="module")
def first(environment, log_path):
    outcome = release(FIRST, environment, log_path)
    assert outcome.decision == "promoted", outcome.reason
    return outcome


@pytest.fixture(scope="module")
def better(first, environment, log_path):
    previous = environment.stable
    outcome = release(BETTER, environment, log_path)
    outcome.previous = previous
    return outcome


def test_first_release_goes_to_production_without_a_canary(first, environment):
    assert first.canary is None and "stage canary: skipped" in first.output
    assert environment.release_of(environment.stable) == first.release
    assert podman.image_id(first.release.image) is not None


def test_better_candidate_is_promoted_and_then_serves_all_traffic(better, environment,
                                                                 log_path):
    assert better.decision == "promoted", better.reason
    assert better.gate.passed and better.gate.comparison is not None
    stats = better.canary.stats
    assert stats["candidate"]["errors"] == 0 and stats["production"]["errors"] == 0
    canary_requests = stats["candidate"]["requests"] + stats["production"]["requests"]
    # nginx's weights: the candidate got its share of the canary traffic, give or take one.
    assert abs(stats["candidate"]["requests"] - canary_requests * 0.2) <= 1, stats
    assert environment.release_of(environment.stable) == better.release
    assert not container_exists(better.previous), "the previous release was not retired"
    assert live_traffic(environment.url) == {(200, better.release.version): 30}


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
    # The same model as production, served by a release whose code fails under load.
    outcome = release(BETTER, environment, log_path,
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
