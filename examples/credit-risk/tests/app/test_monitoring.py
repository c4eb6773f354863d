"""Monitoring inside the service: custom metrics, the prediction log, counted rejections."""

import logging
import time

from prometheus_client import REGISTRY

from credit_risk.jsonl_log import read_prediction_log
from credit_risk.middleware.rejections import field_of
from credit_risk.schema import EXAMPLE_INPUT, LoanApplication


def rejected(field, reason, endpoint="/score"):
    labels = {"endpoint": endpoint, "field": field, "reason": reason}
    return REGISTRY.get_sample_value("credit_risk_rejected_inputs_total", labels) or 0


def test_each_rejection_is_counted_by_field_and_reason(client, service):
    body = EXAMPLE_INPUT.model_dump()
    before = rejected("loan_amount", "less_than_equal"), rejected("other", "extra_forbidden")
    client.post("/score", json={**body, "loan_amount": 10**7})
    client.post("/score", json={**body, "client_ssn": "123-45-6789"})
    after = rejected("loan_amount", "less_than_equal"), rejected("other", "extra_forbidden")
    assert after == (before[0] + 1, before[1] + 1)


def test_unknown_field_names_never_become_label_values():
    assert field_of(["applications", 3, "client_ssn"]) == "other"
    assert field_of(["applications", 3, "age_band"]) == "age_band"
    assert field_of([]) == "body"


def test_rejections_are_logged_as_one_line_without_the_clients_values(caplog):
    from pydantic import ValidationError

    import service  # noqa: F401  (installs the filter on BentoML's logger)

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
    answer = client.post("/score", json=EXAMPLE_INPUT.model_dump()).json()
    logged = {line["request_id"]: line for line in read_prediction_log(service.SETTINGS.logs)}
    line = logged[answer["request_id"]]
    assert line["probability_of_default"] == answer["probability_of_default"]
    assert line["annual_income"] == EXAMPLE_INPUT.annual_income
    assert line["time"].endswith("+00:00")


def test_scores_are_counted_by_decision(client, service):
    def decisions():
        return sum(REGISTRY.get_sample_value("credit_risk_decisions_total", {"decision": d}) or 0
                   for d in ("approve", "decline"))

    before = decisions()
    applications = [EXAMPLE_INPUT.model_dump()] * 3
    client.post("/score_batch", json={"applications": applications})
    assert decisions() == before + 3


def test_the_served_models_training_time_is_exported(client, service, trained):
    stored = trained[0]
    client.get("/readyz")
    exported = REGISTRY.get_sample_value("credit_risk_model_trained_timestamp_seconds",
                                         {"model_version": stored.tag.version})
    assert exported == stored.info.creation_time.timestamp()
    assert exported <= time.time()
