"""`bentoml serve` with CREDIT_RISK_RUNTIME=onnx scores through ONNX Runtime and answers like
the sklearn pipeline in this process; a changed model.onnx stops it at start."""

import httpx
import pytest
from servers import AUTH, failed_start, served

from credit_risk import scoring
from credit_risk.schema import LoanApplication
from training import data

pytestmark = pytest.mark.timeout(180)


def test_served_onnx_answers_like_sklearn_in_process(trained, tmp_path):
    stored, _ = trained
    held_out = data.snapshot()[1].head(500)
    applications = [LoanApplication(**row) for row in
                    held_out[list(LoanApplication.model_fields)].to_dict("records")]
    with served(tmp_path / "serve.log", CREDIT_RISK_RUNTIME="onnx") as url:
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        response = httpx.post(f"{url}/score_batch", timeout=30, headers=AUTH,
                              json={"applications": [a.model_dump() for a in applications]})
    assert 'runtime="onnx"' in metrics  # credit_risk_model_info says which runtime scores
    assert response.status_code == 200, response.text
    answers = response.json()["scores"]
    expected = scoring.score(scoring.load(str(stored.tag)), applications)  # sklearn, here
    assert [a["decision"] for a in answers] == [e.decision for e in expected]
    assert {a["model_version"] for a in answers} == {stored.tag.version}
    # Answers are rounded to 3 decimals; probabilities 1e-6 apart may round differently.
    differences = [abs(a["probability_of_default"] - e.probability_of_default)
                   for a, e in zip(answers, expected, strict=True)]
    print(f"{sum(d == 0 for d in differences)} of {len(differences)} rounded probabilities "
          f"identical, largest difference {max(differences):.3g}")
    assert max(differences) <= 0.001 + 1e-9


def test_a_changed_onnx_file_stops_the_service_naming_it(model_home, tmp_path):
    (folder,) = (model_home / "models" / "credit_risk").glob("*/")
    path = folder / scoring.ONNX_FILE
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01  # one bit of one byte
    path.write_bytes(bytes(content))
    code, output = failed_start(tmp_path / "serve.log", BENTOML_HOME=str(model_home),
                                CREDIT_RISK_RUNTIME="onnx")
    assert code != 0
    (line,) = [line for line in output.splitlines() if "credit-risk service not started" in line]
    assert str(path) in line and "sha256" in line, line
