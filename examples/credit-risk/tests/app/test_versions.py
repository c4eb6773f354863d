"""Versions: lineage and comparisons from the store; promote and roll back on a real server."""

import httpx
import pytest
from servers import AUTH, served

import train
from credit_risk import schema
from credit_risk.schema import EXAMPLE_INPUT
from training import data
from training import registry as versions


@pytest.fixture(scope="module")
def two_versions(trained):
    """v1 is the default training run; v2 is trained on a different data snapshot."""
    v2, _ = train.run(seed=7, rows=30_000)
    return str(trained[0].tag), str(v2.tag)


def test_lineage_table_lists_each_version_with_its_data(two_versions):
    table = versions.lineage_table()
    v1, v2 = (tag.split(":")[1] for tag in two_versions)
    assert {v1, v2} <= set(table.version)
    rows = table.set_index("version")
    assert rows.loc[v1, "data_seed"] == 0 and rows.loc[v2, "data_seed"] == 7
    assert rows.loc[v1, "data_sha256"] != rows.loc[v2, "data_sha256"]


def test_compare_puts_metrics_side_by_side_per_slice(two_versions):
    v1, v2 = two_versions
    table = versions.compare(v1, v2, data.generate(4_000, seed=99))
    assert list(table.index) == ["overall", *schema.AGE_BANDS]
    assert (table["change"] == (table[v2] - table[v1]).round(4)).all()
    assert table.loc["overall", v1] != table.loc["overall", v2]


@pytest.mark.timeout(240)
def test_promote_then_roll_back(two_versions, service):
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
