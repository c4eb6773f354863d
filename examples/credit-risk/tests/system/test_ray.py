"""Ray: the batch job on a real multi-node cluster gives the embedded job's rows, and Ray Serve
scales the scoring deployment up under load and back down, answering every request."""

import importlib.util
import json

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
    """A head and two worker nodes on this machine, connected."""
    require(importlib.util.find_spec("ray") is not None, "ray[data,serve] is not installed")
    from ops.ray_cluster import local_cluster

    with local_cluster(workers=2, cpus_per_worker=2) as address:
        try:
            yield address
        finally:
            from ray import serve

            serve.shutdown()


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

    summary = ray_serve.ramp(url, AUTH)
    (tmp_path / "ramp.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "samples"}))
    assert summary["failed"] == 0, summary["failures"]
    assert summary["max_replicas"] > 1, "no scale-up under 12 clients"
    assert summary["samples"][0]["replicas"] == 1
    wait_until(lambda: ray_serve.replicas().get("RUNNING") == 1, 60,
               "scale-down to one replica")
