"""A/B mode (ops/release/ab.py, deploy/ab/nginx.conf.template) with real nginx and two real
`bentoml serve` processes serving two model versions: the same applicant always meets the same
model, a reload keeps everyone in their arm, the split is balanced, and nginx assigns exactly
as `ab.arm()` computes."""

import math
from collections import Counter

import httpx
import pytest
from conftest import require
from servers import AUTH, served

from credit_risk.schema import FEATURES
from ops.nginx import find_nginx
from ops.release import ab
from training import data

APPLICANTS = 2_000
RETURNING = 200   # applicants who come back, three times each, with other applications


@pytest.mark.timeout(500)
def test_each_applicant_meets_one_model_and_the_split_is_balanced(trained, tmp_path):
    require(find_nginx() is not None, "nginx is not installed (apt-get install nginx)")
    import train

    other, _ = train.run(seed=1)
    versions = {"a": trained[0].tag.version, "b": other.tag.version}
    applications = data.generate(APPLICANTS, seed=99)[FEATURES].to_dict("records")
    ids = [f"applicant-{i:05d}" for i in range(APPLICANTS)]
    seen: dict[str, list[tuple[str, str]]] = {}  # id -> [(X-Arm, model_version), ...]

    def score(client: httpx.Client, applicant: str, application: dict) -> None:
        response = client.post("/score", json=application, headers={ab.HEADER: applicant})
        assert response.status_code == 200, response.text
        seen.setdefault(applicant, []).append((response.headers["x-arm"],
                                               response.json()["model_version"]))

    with served(CREDIT_RISK_LOG_DIR=str(tmp_path / "a")) as url_a, \
            served(CREDIT_RISK_MODEL=str(other.tag),
                   CREDIT_RISK_LOG_DIR=str(tmp_path / "b")) as url_b, \
            ab.ABProxy(url_a.removeprefix("http://"), url_b.removeprefix("http://"),
                       run_dir=tmp_path / "nginx") as proxy, \
            httpx.Client(base_url=proxy.url, headers=AUTH, timeout=30) as client:
        for applicant, application in zip(ids, applications, strict=True):
            score(client, applicant, application)
        for visit in range(3):
            if visit == 2:
                proxy.nginx.reload()  # new workers, same assignment
            for i, applicant in enumerate(ids[:RETURNING]):
                score(client, applicant, applications[-1 - i - visit * RETURNING])
        anonymous = client.post("/score", json=applications[0])

    # Sticky: every visit of an applicant met the same arm and the same model.
    assert all(len(set(visits)) == 1 for visits in seen.values())
    assert sum(len(visits) for visits in seen.values()) == APPLICANTS + 3 * RETURNING
    # Each arm is one model, and nginx assigns exactly as ab.arm() computes.
    arms = {applicant: visits[0][0] for applicant, visits in seen.items()}
    assert all(version == versions[arm] for visits in seen.values() for arm, version in visits)
    assert arms == {applicant: ab.arm(applicant) for applicant in ids}
    # Balanced: with a fair 50/50 split, arm a's count is Binomial(2000, 0.5); 4 standard
    # deviations (about 89) is exceeded by chance once in 15,000 experiments.
    counts = Counter(arms.values())
    bound = 4 * math.sqrt(APPLICANTS * 0.25)
    print(f"\nsplit of {APPLICANTS} applicants: {dict(counts)} (bound ±{bound:.0f})")
    assert abs(counts["a"] - APPLICANTS / 2) <= bound, counts
    # A request without an id belongs to no arm; arm a (production) answers it.
    assert anonymous.status_code == 200 and anonymous.headers["x-arm"] == "unassigned"
    assert anonymous.json()["model_version"] == versions["a"]
