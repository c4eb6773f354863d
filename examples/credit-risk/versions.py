"""Read what the model store knows: a lineage table and a side-by-side comparison."""

import bentoml
import pandas as pd

import artifact
from train import MODEL_NAME, evaluate


def lineage_table(name: str = MODEL_NAME) -> pd.DataFrame:
    """One row per stored version, oldest first: where it came from and how good it is."""
    rows = []
    for stored in sorted(bentoml.models.list(name), key=lambda m: m.info.creation_time):
        meta = stored.info.metadata
        lineage = meta["lineage"]
        rows.append({
            "version": stored.tag.version,
            "created": stored.info.creation_time.strftime("%Y-%m-%d %H:%M:%S"),
            "git_commit": lineage["git_commit"][:12],
            "data_sha256": lineage["data"]["sha256"][:12],
            "data_seed": lineage["data"]["seed"],
            "rows": lineage["data"]["rows"],
            "roc_auc": meta["metrics"]["overall"]["roc_auc"],
            "brier": meta["metrics"]["overall"]["brier"],
            "artifact_sha256": meta["artifact"]["sha256"][:12],
        })
    return pd.DataFrame(rows)


def compare(old: str, new: str, frame: pd.DataFrame, metric: str = "roc_auc") -> pd.DataFrame:
    """`metric` of two versions on the same rows, overall and per age band, and the change.

    Each version's stored metrics come from its own held-out rows; comparing those would mix
    a change of model with a change of test data. Here both models score the same `frame`.
    """

    def by_slice(tag: str) -> dict:
        stored = bentoml.models.get(tag)
        model = artifact.load_verified(stored.path, stored.info.metadata["artifact"]["sha256"])
        metrics = evaluate(model, frame)
        return {"overall": metrics["overall"][metric]} | {
            band: values[metric] for band, values in metrics["by_age_band"].items()}

    table = pd.DataFrame({old: by_slice(old), new: by_slice(new)})
    table["change"] = (table[new] - table[old]).round(4)
    table.index.name = "slice"
    return table
