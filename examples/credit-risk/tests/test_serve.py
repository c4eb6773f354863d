"""End to end: real `bentoml serve` processes on free loopback ports."""

import os
import shutil

import httpx
import pytest

import artifact
from servers import AUTH, assert_batch_matches_in_process, failed_start, served


@pytest.fixture(scope="module")
def server_url(trained):
    with served() as url:
        yield url


@pytest.mark.timeout(120)
def test_served_scores_match_the_model_in_process(server_url, service):
    applications = [service.EXAMPLE_INPUT,
                    service.EXAMPLE_INPUT.model_copy(update={"employment": "student"})]
    assert_batch_matches_in_process(server_url, service, applications)


@pytest.mark.timeout(120)
def test_served_bad_input_gets_a_json_400(server_url, service):
    body = {**service.EXAMPLE_INPUT.model_dump(), "purpose": "yacht"}
    response = httpx.post(f"{server_url}/score", json=body, timeout=10, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["purpose"]


@pytest.mark.timeout(120)
def test_a_tampered_artifact_stops_the_server_at_start(trained, tmp_path):
    stored, _ = trained
    home = tmp_path / "bentoml"
    shutil.copytree(os.environ["BENTOML_HOME"], home)
    model_file = home / "models" / stored.tag.name / stored.tag.version / artifact.ARTIFACT
    content = bytearray(model_file.read_bytes())
    content[100] ^= 0xFF
    model_file.write_bytes(content)

    returncode, output = failed_start(tmp_path / "serve.log", BENTOML_HOME=str(home),
                                      CREDIT_RISK_MODEL=str(stored.tag))
    assert returncode != 0
    assert f"model artifact {model_file}" in output
    assert "changed since it was written" in output
