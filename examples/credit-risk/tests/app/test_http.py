"""HTTP tests in-process: the ASGI app BentoML builds, driven by Starlette's TestClient."""

import pytest

from credit_risk import schema
from credit_risk.schema import EXAMPLE_INPUT


@pytest.fixture(scope="module")
def valid(service):
    return EXAMPLE_INPUT.model_dump()


def test_score_returns_probability_decision_and_version(client, valid, trained):
    stored, _ = trained
    response = client.post("/score", json=valid)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"probability_of_default", "decision", "model_version", "request_id",
                         "reasons"}
    assert 0 <= body["probability_of_default"] <= 1
    assert body["decision"] in {"approve", "decline"}
    assert body["model_version"] == stored.tag.version


def test_batch_scores_each_application_like_the_single_endpoint(client, valid):
    risky = {**valid, "employment": "unemployed", "previous_defaults": 4, "debt_to_income": 0.9}
    response = client.post("/score_batch", json={"applications": [valid, risky]})
    assert response.status_code == 200
    scores = response.json()["scores"]
    single = client.post("/score", json=valid).json()
    assert without_request_id(scores[0]) == without_request_id(single)
    assert scores[0]["request_id"] != scores[1]["request_id"] != single["request_id"]
    assert scores[1]["probability_of_default"] > scores[0]["probability_of_default"]


def test_health_endpoints(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


BAD_APPLICATIONS = {
    "wrong-type": {"annual_income": "plenty"},
    "below-minimum": {"loan_amount": 10},
    "above-maximum": {"debt_to_income": 7},
    "unknown-category": {"purpose": "yacht"},
    "term-not-offered": {"term_months": 18},
    "extra-field": {"favourite_colour": "blue"},
    "negative-count": {"previous_defaults": -1},
}


@pytest.mark.parametrize("change", BAD_APPLICATIONS.values(), ids=BAD_APPLICATIONS.keys())
def test_each_kind_of_bad_application_gets_a_json_400(client, valid, change):
    response = client.post("/score", json={**valid, **change})
    assert_clean_400(response, field=next(iter(change)))


def test_a_missing_field_is_named(client, valid):
    without_age = {key: value for key, value in valid.items() if key != "age_band"}
    assert_clean_400(client.post("/score", json=without_age), field="age_band")


@pytest.mark.parametrize("body", ['{"annual_income": NaN}', "not json", '{"annual_income": 1e999}'])
def test_unparseable_or_non_finite_bodies_get_a_json_400(client, body):
    response = client.post("/score", content=body, headers={"content-type": "application/json"})
    assert_clean_400(response)


def test_batches_must_hold_between_one_and_the_maximum(client, valid, service):
    assert_clean_400(client.post("/score_batch", json={"applications": []}), field="applications")
    too_many = {"applications": [valid] * (schema.MAX_APPLICATIONS_PER_REQUEST + 1)}
    assert_clean_400(client.post("/score_batch", json=too_many), field="applications")


def without_request_id(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key != "request_id"}


def assert_clean_400(response, field=None):
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "error" in body and "Traceback" not in response.text
    if field is not None:
        assert any(field in error["loc"] for error in body["detail"]), body


def test_the_document_declares_errors_and_the_api_key(client):
    document = client.get("/docs.json").json()
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        **document["components"]["securitySchemes"]["ApiKey"],
        "type": "apiKey", "in": "header", "name": "X-API-Key"}
    for path in ["/score", "/score_batch"]:
        operation = document["paths"][path]["post"]
        assert operation["security"] == [{"ApiKey": []}]
        assert set(operation["responses"]) == {"200", "400", "401", "403", "408", "413", "415",
                                               "429", "431", "503", "504"}
        assert "Retry-After" in operation["responses"]["429"]["headers"]
