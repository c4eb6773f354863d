"""The served /metrics: complete, and in a format promtool accepts."""

import shutil
import subprocess

import httpx
import pytest
from conftest import require
from servers import AUTH, served

from credit_risk.schema import EXAMPLE_INPUT


@pytest.mark.timeout(120)
def test_served_metrics_are_complete_and_pass_promtool(trained, service):
    with served() as url:
        httpx.post(f"{url}/score", json={"purpose": "yacht"}, timeout=10, headers=AUTH)
        httpx.post(f"{url}/score_batch", timeout=10, headers=AUTH, json={"applications": [
            EXAMPLE_INPUT.model_dump()] * 2})
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    stored, _ = trained
    for expected in [
        'bentoml_service_request_total{endpoint="/score_batch",http_response_code="200"',
        'bentoml_service_request_duration_seconds_bucket{endpoint="/score_batch"',
        'le="0.25"',
        "credit_risk_probability_of_default_count 2.0",
        f'credit_risk_model_info{{artifact_sha256="{stored.info.metadata["artifact"]["sha256"]}"',
        "credit_risk_expected_decline_rate",
        'credit_risk_rejected_inputs_total{endpoint="/score",field="purpose",reason="literal_error"}',
    ]:
        assert expected in metrics, expected
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool is not installed (apt-get install prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=metrics, text=True,
                           capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
