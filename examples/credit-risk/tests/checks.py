"""Assertions and polling the example's tests share."""

import asyncio
import json
import time
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from servers import AUTH

from credit_risk import artifact
from credit_risk.schema import EXAMPLE_INPUT

KEY_RELOAD_DEADLINE_S = 5  # the service looks at the keys file once a second


def assert_json_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and "Traceback" not in response.text
    return body


def poll(call, until, deadline_s: float = KEY_RELOAD_DEADLINE_S):
    """Call `call()` until `until(result)` holds; return the last result."""
    deadline = time.monotonic() + deadline_s
    while not until(result := call()):
        assert time.monotonic() < deadline, f"not within {deadline_s}s: {result}"
        time.sleep(0.05)
    return result


def forge(folder: Path, threshold: float) -> None:
    """What a careful attacker does: change the decision threshold in the model's metadata,
    then rewrite manifest.json so every hash matches again."""
    info = folder / "model.yaml"
    metadata = yaml.safe_load(info.read_text())
    metadata["metadata"]["decision_threshold"] = threshold
    info.write_text(yaml.safe_dump(metadata, sort_keys=False))
    manifest = json.loads((folder / artifact.MANIFEST).read_text())
    manifest["model.yaml"] = artifact.sha256_of(info)
    (folder / artifact.MANIFEST).write_text(json.dumps(manifest))


def applications(n: int) -> list:
    """n different valid applications."""
    return [EXAMPLE_INPUT.model_copy(update={"loan_amount": 1_000 + 37 * i,
                                                     "previous_defaults": i % 4})
            for i in range(n)]


async def post_all(url: str, bodies: list[dict], concurrency: int) -> list[httpx.Response]:
    """POST every body to url, `concurrency` at a time."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=AUTH) as client:
        return await asyncio.gather(*(client.post(url, json=body) for body in bodies))


def samples(url: str, name: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} for one metric family on url/metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) if family.name == name
            for s in family.samples}
