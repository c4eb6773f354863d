"""Every error the application answers is JSON, and headers are size-capped.

- An unknown path (404) and a wrong method (405, with its Allow header) come from BentoML's
  router as plain text; credit_risk/middleware/errors.py turns them into {"error": ...}.
- Headers over `max_header_bytes` (16 KiB by default) get a 431 JSON.
- The OpenAPI document declares the API key required, or optional in anonymous mode.
(Malformed HTTP never reaches the app: tests/served/test_errors_served.py.)
"""

from credit_risk.openapi import declare
from credit_risk.schema import EXAMPLE_INPUT


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    return body


def test_unknown_path_is_a_json_404(client):
    assert assert_json_error(client.get("/no-such-route"), 404) == {"error": "Not Found"}


def test_wrong_method_is_a_json_405_with_allow(client):
    response = client.get("/score")
    assert assert_json_error(response, 405) == {"error": "Method Not Allowed"}
    assert "POST" in response.headers["allow"]


def test_headers_over_the_cap_get_a_json_431(client, service):
    cap = service.SETTINGS.max_header_bytes
    response = client.post("/score", json=EXAMPLE_INPUT.model_dump(),
                           headers={"X-Padding": "a" * cap})
    assert "exceed 16384 bytes" in assert_json_error(response, 431)["error"]
    just_under = client.post("/score", json=EXAMPLE_INPUT.model_dump(),
                             headers={"X-Padding": "a" * (cap // 2)})
    assert just_under.status_code == 200, just_under.text


def test_json_answers_pass_through_unchanged(client):
    response = client.post("/score", json={})
    assert response.status_code == 400 and "detail" in response.json()  # BentoML's own JSON


def test_openapi_declares_the_key_optional_only_in_anonymous_mode(client, service):
    served = client.get("/docs.json").json()  # the test session's service requires keys
    spec = service.CreditRisk.openapi_spec.asdict()
    anonymous = declare(spec, anonymous=True)
    for path in ("/score", "/score_batch"):
        assert served["paths"][path]["post"]["security"] == [{"ApiKey": []}]
        assert anonymous["paths"][path]["post"]["security"] == [{}, {"ApiKey": []}]
