"""Load a verified model from the store and score applications: no serving runtime needed.

The BentoML service and the Ray Serve deployment score through `score()`, the batch jobs
through `probabilities()` and `decide`, so one model, one schema and one decision rule
serve every path. `score()` also gives each decline its principal reasons
(credit_risk/reasons.py), on either runtime; the batch jobs give none.

Two runtimes score the same model (the `runtime` setting): the sklearn pipeline itself, or
its ONNX export `model.onnx` (written by training beside `model.skops`, covered by the same
manifest and signature) in ONNX Runtime. Both give the same decisions; probabilities agree
to about 1e-6 (tests/app/test_onnx.py measures it).
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Literal

import bentoml
import numpy as np
import pandas as pd

from credit_risk import artifact, reasons
from credit_risk.schema import CATEGORIES, FEATURES, NUMERIC, LoanApplication, Score, decide

Runtime = Literal["sklearn", "onnx"]
ONNX_FILE = "model.onnx"
# The ONNX graph takes one (n, 1) input per column, in these types: the tree ensemble
# compares in float32; categories go in as they are (text, or whole numbers).
ONNX_DTYPES = {name: np.float32 for name in NUMERIC} | {
    name: np.int64 if all(isinstance(value, int) for value in values) else np.object_
    for name, values in CATEGORIES.items()}


@dataclass(frozen=True)
class LoadedModel:
    tag: str                 # credit_risk:<version>
    version: str
    pipeline: object         # the fitted sklearn Pipeline
    threshold: float         # the decision threshold stored with the model
    sha256: str              # of the model file: keys the answer cache
    metadata: dict
    trained_at: datetime     # when training stored this model (model.yaml's creation_time)
    runtime: Runtime = "sklearn"
    session: object = None   # an onnxruntime.InferenceSession when runtime is "onnx"


def load(tag: str, public_key: Path | None = None, runtime: Runtime = "sklearn") -> LoadedModel:
    """The stored model, its hashes (and signature, given a public key) checked; raises
    ArtifactError naming a bad file, bentoml's NotFound for an unknown tag."""
    stored = bentoml.models.get(tag)
    metadata = stored.info.metadata
    pipeline = artifact.load_verified(stored.path, metadata["artifact"]["sha256"], public_key)
    session = onnx_session(Path(stored.path), metadata) if runtime == "onnx" else None
    return LoadedModel(str(stored.tag), stored.tag.version, pipeline,
                       metadata["decision_threshold"], metadata["artifact"]["sha256"], metadata,
                       stored.info.creation_time, runtime, session)


def onnx_session(folder: Path, metadata: dict):
    """An ONNX Runtime session (one thread) over folder/model.onnx, from the very bytes whose
    sha256 matched the one training recorded (load_verified has checked the manifest)."""
    import onnxruntime  # only where the ONNX runtime is asked for

    path = folder / ONNX_FILE
    expected = metadata["artifact"].get("onnx_sha256")
    if not path.is_file() or expected is None:
        raise artifact.ArtifactError(
            f"model file {path} is missing: CREDIT_RISK_RUNTIME=onnx needs a model trained "
            f"with its ONNX export (train it again, or serve it with runtime sklearn)")
    content = path.read_bytes()
    if (actual := hashlib.sha256(content).hexdigest()) != expected:
        raise artifact.ArtifactError(
            f"model file {path} has sha256 {actual} but training recorded {expected}: the "
            f"file changed since it was written; refusing to load it")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one worker per core: more threads only compete
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(content, options,
                                            providers=["CPUExecutionProvider"])
    except Exception as error:  # a corrupt graph fails inside onnxruntime with various errors
        raise artifact.ArtifactError(f"model file {path} cannot be read: {error}") from error


def onnx_inputs(frame: pd.DataFrame) -> dict:
    """The ONNX graph's inputs for a frame holding the FEATURES columns."""
    return {name: frame[name].to_numpy().astype(dtype).reshape(-1, 1)
            for name, dtype in ONNX_DTYPES.items()}


def probabilities(model: LoadedModel, frame: pd.DataFrame):
    """Probability of default for each row of a frame holding the FEATURES columns."""
    if model.runtime == "onnx":
        _, probability = model.session.run(None, onnx_inputs(frame))
        return probability[:, 1].astype(np.float64)
    return model.pipeline.predict_proba(frame[FEATURES])[:, 1]


def score(model: LoadedModel, applications: list[LoanApplication]) -> list[Score]:
    """Score validated applications, with the reasons for each decline; each answer gets a
    fresh request id."""
    frame = pd.DataFrame([application.model_dump() for application in applications])
    p = probabilities(model, frame)
    decisions = [decide(x, model.threshold) for x in p]
    declined = [i for i, decision in enumerate(decisions) if decision == "decline"]
    why = dict(zip(declined, reasons.principal_reasons(
        partial(probabilities, model), frame.iloc[declined], p[declined]), strict=True))
    return [
        Score(probability_of_default=round(float(x), 3), decision=decision,
              model_version=model.version, request_id=uuid.uuid4().hex,
              reasons=why.get(i, []))
        for i, (x, decision) in enumerate(zip(p, decisions, strict=True))
    ]
