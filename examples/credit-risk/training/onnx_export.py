"""Compile the fitted Pipeline to ONNX: `model.onnx`, stored beside `model.skops`.

skl2onnx converts this pipeline as it is (its ColumnTransformer, numeric passthrough and
OneHotEncoder over text and whole-number categories, and the HistGradientBoostingClassifier
are all supported): the preprocessing did not change. What the conversion sets:

- one graph input per column, shaped (n, 1), in the types of `scoring.ONNX_DTYPES`: float32
  for the numbers (ONNX's TreeEnsembleClassifier compares in float32; the numeric inputs
  here are rounded amounts, ratios and counts, far from float32's precision limit at the
  split thresholds), text for the string categories, int64 for `term_months`;
- `zipmap: False`, so the probabilities come out as one (n, 2) tensor, not a list of dicts.

And one workaround: skl2onnx 1.20 gives each leaf of a HistGradientBoosting tree a Python
`False` as its missing-value flag, which onnx 1.23 refuses in an integer attribute
("Expected an int, got a boolean"). `_integer_missing_flags()` turns the flag into 0 or 1
while the conversion runs; the graph is what skl2onnx meant to write.
"""

import hashlib
from contextlib import contextmanager
from pathlib import Path

from skl2onnx import convert_sklearn
from skl2onnx.common import tree_ensemble
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.pipeline import Pipeline

from credit_risk.scoring import ONNX_DTYPES, ONNX_FILE

TENSOR_TYPES = {"float32": FloatTensorType, "int64": Int64TensorType,
                "object_": StringTensorType}
OPSET = {"": 17, "ai.onnx.ml": 3}


@contextmanager
def _integer_missing_flags():
    original = tree_ensemble.add_node

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return original(*args, nodes_missing_value_tracks_true=int(
            nodes_missing_value_tracks_true), **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def to_onnx(model: Pipeline) -> bytes:
    """The pipeline as a serialized ONNX graph: inputs one per feature column, outputs
    `label` and `probabilities` (n, 2)."""
    initial_types = [(name, TENSOR_TYPES[dtype.__name__]([None, 1]))
                     for name, dtype in ONNX_DTYPES.items()]
    with _integer_missing_flags():
        graph = convert_sklearn(model, initial_types=initial_types, target_opset=OPSET,
                                options={id(model.steps[-1][1]): {"zipmap": False}})
    return graph.SerializeToString()


def write(model: Pipeline, folder: Path) -> str:
    """Write folder/model.onnx and return its sha256."""
    content = to_onnx(model)
    (Path(folder) / ONNX_FILE).write_bytes(content)
    return hashlib.sha256(content).hexdigest()
