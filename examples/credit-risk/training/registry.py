"""The model store as a registry: the version key, lineage, saving, and reading it back.

A model's version is a digest of everything that decides what it is: the training data, the
parameters, the code, and the versions of the libraries that fit and load it. Training twice
on the same inputs reuses the stored version; any change, a dependency upgrade included,
gives a new one.
"""

import hashlib
import json
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import bentoml
import pandas as pd
from sklearn.pipeline import Pipeline

from credit_risk import artifact, scoring
from credit_risk.schema import DECISION_THRESHOLD, MODEL_NAME
from training import onnx_export
from training.model import evaluate

EXAMPLE_DIR = Path(__file__).resolve().parents[1]
# The files whose code decides what a model is, and the libraries that fit and load it.
CODE_FILES = ["training/data.py", "training/model.py", "training/validation.py",
              "credit_risk/schema.py", "credit_risk/artifact.py",
              "training/onnx_export.py"]
LIBRARIES = ["scikit-learn", "numpy", "scipy", "pandas", "skops", "skl2onnx", "onnx"]


def git(*args: str) -> subprocess.CompletedProcess:
    """Run git in the example's folder (a missing git counts as "not a repository")."""
    try:
        return subprocess.run(["git", *args], cwd=EXAMPLE_DIR, capture_output=True, text=True)
    except FileNotFoundError:
        return subprocess.CompletedProcess(["git", *args], 127, "", "git is not installed")


def git_commit() -> str:
    """The commit this code comes from, or "uncommitted" outside git or with local changes."""
    head = git("rev-parse", "HEAD")
    if head.returncode != 0 or git("status", "--porcelain", "--", ".").stdout.strip():
        return "uncommitted"
    return head.stdout.strip()


# --8<-- [start:reviewed]
def unreviewed_code() -> str | None:
    """Why the code that makes the model (CODE_FILES) cannot have been reviewed, or None when
    every one of those files is committed unchanged. Outside a git repository nothing shows
    a review, so that is a reason too."""
    if git("rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        return f"{EXAMPLE_DIR} is not in a git repository with a commit"
    changed = git("diff", "--name-only", "--relative", "HEAD", "--", *CODE_FILES).stdout.split()
    untracked = git("ls-files", "--others", "--", *CODE_FILES).stdout.split()
    if changed or untracked:
        return f"uncommitted changes to {', '.join(sorted(set(changed + untracked)))}"
    return None
# --8<-- [end:reviewed]


# --8<-- [start:lineage]
def code_hash() -> str:
    """sha256 over the files that decide what the model is."""
    digest = hashlib.sha256()
    for name in CODE_FILES:
        digest.update(name.encode() + (EXAMPLE_DIR / name).read_bytes())
    return digest.hexdigest()


def library_versions() -> dict:
    return {"python": platform.python_version()} | {name: version(name) for name in LIBRARIES}


def model_version(data_sha256: str, params: dict) -> str:
    key = json.dumps({"data": data_sha256, "params": params, "code": code_hash(),
                      "libraries": library_versions()}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def lineage(data_spec: dict, data_sha256: str, params: dict) -> dict:
    return {
        "git_commit": git_commit(),
        "code_sha256": code_hash(),
        "data": {**data_spec, "sha256": data_sha256},
        "params": params,
        "python": platform.python_version(),
        "libraries": {name: number for name, number in library_versions().items()
                      if name != "python"} | {"bentoml": version("bentoml")},
    }
# --8<-- [end:lineage]


def stored(version_tag: str) -> bentoml.Model | None:
    """The stored model of that version, or None."""
    try:
        return bentoml.models.get(bentoml.Tag(MODEL_NAME, version_tag))
    except bentoml.exceptions.NotFound:
        return None


def save(model: Pipeline, metrics: dict, stability: dict, lineage_info: dict, version_tag: str,
         signing_key: Path | None = None) -> bentoml.Model:
    """Store the model as skops under credit_risk:<version>, or return that version if stored.

    `stability` (the measured values of training/stability.py's check) goes into the
    metadata beside the metrics; like them it is not part of the version key.

    Its ONNX export, model.onnx, is written beside it (training/onnx_export.py) for the
    `runtime: onnx` setting; the sklearn pipeline stays what the service scores by default.
    The stored directory, model.onnx included, gets a manifest and, given a private key, a signature
    (see artifact.seal).
    """
    tag = bentoml.Tag(MODEL_NAME, version_tag)
    if (existing := stored(version_tag)) is not None:
        return existing
    with bentoml.models.create(
        tag,
        labels={"owner": "credit-risk-team", "stage": "candidate",
                "data_sha256": lineage_info["data"]["sha256"][:12]},
        metadata={"metrics": metrics, "lineage": lineage_info, "stability": stability,
                  "decision_threshold": DECISION_THRESHOLD},
    ) as created:
        sha256 = artifact.dump(model, Path(created.path))
        onnx_sha256 = onnx_export.write(model, Path(created.path))  # before the seal below
        created.info.metadata.update({
            "artifact": {"file": artifact.ARTIFACT, "format": "skops", "sha256": sha256,
                         "trusted_types": artifact.TRUSTED_TYPES,
                         "onnx_file": scoring.ONNX_FILE, "onnx_sha256": onnx_sha256},
        })
    saved = bentoml.models.get(tag)  # the store's copy, now with model.yaml written
    try:
        artifact.seal(saved.path, signing_key)  # manifest.json, and model.sig given a key
    except BaseException:
        bentoml.models.delete(tag)  # no half-sealed model left behind for the next run to reuse
        raise
    return saved


def lineage_table(name: str = MODEL_NAME) -> pd.DataFrame:
    """One row per stored version, oldest first: where it came from and how good it is."""
    rows = []
    for model in sorted(bentoml.models.list(name), key=lambda m: m.info.creation_time):
        meta = model.info.metadata
        lineage = meta["lineage"]
        rows.append({
            "version": model.tag.version,
            "created": model.info.creation_time.strftime("%Y-%m-%d %H:%M:%S"),
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
        metrics = evaluate(scoring.load(tag).pipeline, frame)
        return {"overall": metrics["overall"][metric]} | {
            band: values[metric] for band, values in metrics["by_age_band"].items()}

    table = pd.DataFrame({old: by_slice(old), new: by_slice(new)})
    table["change"] = (table[new] - table[old]).round(4)
    table.index.name = "slice"
    return table
