"""Promote and roll back on a real server: answers and reported versions follow the tag."""

import httpx
import pytest
from servers import AUTH, served

from credit_risk.schema import EXAMPLE_INPUT


@pytest.mark.timeout(240)
def test_promote_then_roll_back(two_versions):
    """Serve v1, switch to v2, roll back to v1: answers and reported versions follow."""
    body = EXAMPLE_INPUT.model_dump()
    answers = []
    for tag in [*two_versions, two_versions[0]]:
        with served(CREDIT_RISK_MODEL=tag) as url:
            answers.append(httpx.post(f"{url}/score", json=body, timeout=10,
                                      headers=AUTH).json())
    versions_served = [answer["model_version"] for answer in answers]
    assert versions_served == [tag.split(":")[1] for tag in [*two_versions, two_versions[0]]]
    del answers[0]["request_id"], answers[2]["request_id"]
    assert answers[0] == answers[2], "rolling back must restore the exact previous answers"
    assert answers[1]["probability_of_default"] != answers[0]["probability_of_default"]
