"""Ray: the batch job on a real multi-node cluster gives the embedded job's rows, and Ray Serve
scales the scoring deployment up under load and back down, answering every request."""

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import require
from servers import AUTH
from test_batch import applications, job, outputs

from credit_risk.schema import EXAMPLE_INPUT
from credit_risk.settings import Settings
from ops.processes import free_port, wait_until


@pytest.fixture(scope="module")
def cluster(trained):
    """Head + 2 worker nodes on this machine, Ray's state and token in a temp folder."""
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        require(False, "ray[data,serve] is not installed")
    from ops.ray_batch import connect

    # short: Ray's unix socket paths must fit in 107 bytes, pytest's tmp paths are long
    state = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(state / "home"))  # ~/.ray/auth_token goes here
        env.setenv("RAY_TMPDIR", str(state))
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        nodes = None
        try:
            # Every node on loopback: Ray would otherwise bind the machine's own address.
            nodes = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 1, "temp_dir": str(state), "include_dashboard": False,
                "node_ip_address": "127.0.0.1", "object_store_memory": 200 * 2**20})
            for _ in range(2):
                nodes.add_node(num_cpus=2, node_ip_address="127.0.0.1",
                               object_store_memory=200 * 2**20)
            nodes.wait_for_nodes()
            connect(nodes.address)
            assert len([n for n in ray.nodes() if n["Alive"]]) == 3
            yield nodes
        finally:
            from ray import serve

            if ray.is_initialized():
                serve.shutdown()
                ray.shutdown()
            if nodes is not None:
                nodes.shutdown()
            shutil.rmtree(state, ignore_errors=True)


@pytest.mark.timeout(400)
def test_ray_data_gives_the_embedded_jobs_rows(cluster, trained, tmp_path):
    from ops import ray_batch

    stored, _ = trained
    source = tmp_path / "applications.parquet"
    frame = applications(source, 20_000)
    job("score", source, tmp_path / "embedded", "--model", stored.tag, "--chunk-rows", 5_000,
        "--no-progress")
    counts = ray_batch.run(source, tmp_path / "ray", str(stored.tag), concurrency=2,
                           batch_rows=2_500)
    assert (counts.read, counts.rejected) == (len(frame), 7)
    for embedded, on_ray in zip(outputs(tmp_path / "embedded"), outputs(tmp_path / "ray"),
                                strict=True):
        pd.testing.assert_frame_equal(embedded, on_ray)
    # the work was spread: the actors ran on more than one node
    import ray

    assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == 3


def load(url: str, clients: int, stop: threading.Event, log: list) -> list[threading.Thread]:
    """`clients` threads posting the example application until `stop` is set."""
    def client() -> None:
        with httpx.Client(headers=AUTH, timeout=30) as http:
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


def p99(latencies: list[float]) -> float | None:
    return round(sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000, 1) \
        if latencies else None


@pytest.mark.timeout(400)
def test_serve_scales_up_under_load_and_back_down_answering_every_request(cluster, tmp_path):
    from ops import ray_serve

    url = ray_serve.start(Settings.from_env(), free_port())
    # the API's contract holds on Serve too
    assert httpx.post(url, json=EXAMPLE_INPUT.model_dump(), timeout=30).status_code == 401
    invalid = httpx.post(url, json={**EXAMPLE_INPUT.model_dump(), "term_months": 37},
                         headers=AUTH, timeout=30)
    assert invalid.status_code == 400 and invalid.json()["detail"][0]["loc"] == ["term_months"]
    answer = httpx.post(url, json=EXAMPLE_INPUT.model_dump(), headers=AUTH, timeout=30)
    assert answer.status_code == 200 and answer.json()["decision"] in ("approve", "decline")

    log, ramp, start = [], [], time.monotonic()
    phases = [("idle", 1, 5), ("heavy", 12, 20), ("idle", 1, 90)]  # name, clients, at most s
    for name, clients, seconds in phases:
        stop = threading.Event()
        threads = load(url, clients, stop, log)
        phase_start = time.monotonic()
        try:
            while time.monotonic() - phase_start < seconds:
                sample_start = time.monotonic()
                stop.wait(1.0)  # sampling cadence, not synchronisation
                recent = [latency for t, latency, _ in log if t >= sample_start]
                ramp.append({"t_s": round(time.monotonic() - start, 1), "phase": name,
                             "replicas": ray_serve.replicas(), "clients": clients,
                             "requests_per_s": len(recent), "p99_ms": p99(recent)})
                # the last idle phase ends as soon as the deployment is back to one replica
                if name == "idle" and ramp[-1]["replicas"] == 1 and len(ramp) > 10 \
                        and any(r["replicas"] > 1 for r in ramp):
                    break
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=40)

    report = tmp_path / "ramp.json"
    heavy = [r for r in ramp if r["phase"] == "heavy"]
    up = next((r["t_s"] for r in heavy if r["replicas"] > 1), None)
    after = [r for r in ramp if r["t_s"] > heavy[-1]["t_s"]]
    down = next((r["t_s"] for r in after if r["replicas"] == 1), None)
    summary = {"ramp": ramp, "requests": len(log),
               "failed": sum(1 for *_, status in log if status != 200),
               "max_replicas": max(r["replicas"] for r in ramp),
               "scale_up_after_s": up and round(up - heavy[0]["t_s"] + 1, 1),
               "scale_down_after_s": down and round(down - heavy[-1]["t_s"], 1)}
    report.write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "ramp"}))
    for row in ramp:
        print(row)
    assert summary["failed"] == 0, {s for *_, s in log if s != 200}
    assert summary["max_replicas"] > 1, "no scale-up under 12 clients"
    assert ramp[0]["replicas"] == 1
    wait_until(lambda: ray_serve.replicas() == 1, 60, "scale-down to one replica")
