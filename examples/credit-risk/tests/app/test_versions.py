"""Versions: lineage and comparisons from the store."""

from credit_risk import schema
from training import data
from training import registry as versions


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
