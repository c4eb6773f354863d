"""HTTP tests in-process: the ASGI app BentoML builds, driven by Starlette's TestClient."""

import pytest
from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def client(saved_model):
    from service import IrisClassifier

    with TestClient(IrisClassifier.to_asgi()) as client:
        yield client


def test_classify_example_input(client, saved_model):
    from service import EXAMPLE_INPUT

    response = client.post("/classify", json=EXAMPLE_INPUT.model_dump())
    assert response.status_code == 200
    body = response.json()
    assert body["species"] == "setosa"
    assert body["model_version"] == saved_model.tag.version


def test_health_endpoints(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


VALID = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**VALID, "sepal_length": "long"}, id="wrong-type"),
        pytest.param({**VALID, "sepal_length": 100}, id="out-of-range"),
        pytest.param({k: v for k, v in VALID.items() if k != "petal_width"}, id="missing-field"),
        pytest.param({**VALID, "colour": "blue"}, id="extra-field"),
        pytest.param('{"sepal_length": NaN}', id="nan"),
        pytest.param("this is not json", id="not-json"),
    ],
)
def test_invalid_input_gets_a_json_400(client, body):
    if isinstance(body, str):
        response = client.post(
            "/classify", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = client.post("/classify", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert "error" in response.json()
    assert "Traceback" not in response.text
