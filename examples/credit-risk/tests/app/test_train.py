"""Training: quality gates, slices, lineage, reproducibility and idempotent saving."""


import numpy as np

import train
from credit_risk import schema
from training import data


def test_model_meets_quality_gates_overall_and_per_age_band(trained):
    _, metrics = trained
    assert metrics["overall"]["roc_auc"] >= 0.74
    assert metrics["overall"]["brier"] <= 0.17
    assert set(metrics["by_age_band"]) == set(schema.AGE_BANDS)
    assert all(m["roc_auc"] >= 0.68 for m in metrics["by_age_band"].values())


def test_lineage_is_recorded_with_the_model(trained):
    stored, _ = trained
    metadata = stored.info.metadata
    lineage = metadata["lineage"]
    assert lineage["data"]["sha256"] == data.data_hash(data.generate(20_000, seed=0))
    assert lineage["params"] == train.DEFAULT_PARAMS
    assert lineage["git_commit"] == "uncommitted" or len(lineage["git_commit"]) == 40
    assert {"scikit-learn", "skops", "bentoml"} <= set(lineage["libraries"])
    assert len(metadata["artifact"]["sha256"]) == 64
    assert stored.info.labels["data_sha256"] == lineage["data"]["sha256"][:12]


def test_same_data_and_params_give_identical_predictions():
    frame = data.generate(5_000, seed=2)
    first, second = train.fit(frame), train.fit(frame)
    sample = data.generate(500, seed=9)[schema.FEATURES]
    np.testing.assert_array_equal(first.predict_proba(sample), second.predict_proba(sample))


def test_saving_is_idempotent_and_versions_follow_the_inputs(trained):
    stored, _ = trained
    again, _ = train.run()
    assert again.tag == stored.tag
    other, _ = train.run(seed=1)
    assert other.tag.version != stored.tag.version
