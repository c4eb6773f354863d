"""Monitoring inside the service: custom metrics, the prediction log, counted rejections."""

import logging
import os
import shutil
import subprocess

import httpx
import pytest
from prometheus_client import REGISTRY

import monitoring
from servers import AUTH, served


def rejected(field, reason, endpoint="/score"):
    labels = {"endpoint": endpoint, "field": field, "reason": reason}
    return REGISTRY.get_sample_value("credit_risk_rejected_inputs_total", labels) or 0


def test_each_rejection_is_counted_by_field_and_reason(client, service):
    body = service.EXAMPLE_INPUT.model_dump()
    before = rejected("loan_amount", "less_than_equal"), rejected("other", "extra_forbidden")
    client.post("/score", json={**body, "loan_amount": 10**7})
    client.post("/score", json={**body, "client_ssn": "123-45-6789"})
    after = rejected("loan_amount", "less_than_equal"), rejected("other", "extra_forbidden")
    assert after == (before[0] + 1, before[1] + 1)


def test_unknown_field_names_never_become_label_values():
    assert monitoring.field_of(["applications", 3, "client_ssn"]) == "other"
    assert monitoring.field_of(["applications", 3, "age_band"]) == "age_band"
    assert monitoring.field_of([]) == "body"


def test_rejections_are_logged_as_one_line_without_the_clients_values(caplog):
    from pydantic import ValidationError

    from service import LoanApplication

    try:
        LoanApplication(annual_income="123-45-6789")
    except ValidationError as error:
        validation_error = error
    logger = logging.getLogger("bentoml._internal.server.http_app")
    with caplog.at_level(logging.INFO, logger=logger.name):
        try:
            raise validation_error
        except ValidationError:
            logger.exception("Exception on /score [POST]")
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert "123-45-6789" not in caplog.text and "Traceback" not in caplog.text


def test_every_scored_application_is_logged_with_its_request_id(client, service):
    answer = client.post("/score", json=service.EXAMPLE_INPUT.model_dump()).json()
    logged = {line["request_id"]: line for line in monitoring.read_prediction_log()}
    line = logged[answer["request_id"]]
    assert line["probability_of_default"] == answer["probability_of_default"]
    assert line["annual_income"] == service.EXAMPLE_INPUT.annual_income
    assert line["time"].endswith("+00:00")


def test_scores_are_counted_by_decision(client, service):
    def decisions():
        return sum(REGISTRY.get_sample_value("credit_risk_decisions_total", {"decision": d}) or 0
                   for d in ("approve", "decline"))

    before = decisions()
    applications = [service.EXAMPLE_INPUT.model_dump()] * 3
    client.post("/score_batch", json={"applications": applications})
    assert decisions() == before + 3


@pytest.mark.timeout(120)
def test_served_metrics_are_complete_and_pass_promtool(trained, service):
    with served() as url:
        httpx.post(f"{url}/score", json={"purpose": "yacht"}, timeout=10, headers=AUTH)
        httpx.post(f"{url}/score_batch", timeout=10, headers=AUTH, json={"applications": [
            service.EXAMPLE_INPUT.model_dump()] * 2})
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
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=metrics, text=True,
                           capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
