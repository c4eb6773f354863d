"""The ONNX export scores like the sklearn pipeline it was compiled from.

- On the held-out rows of the training snapshot, ONNX Runtime's probabilities equal
  sklearn's within 1e-5 (absolute; the measured maximum is printed) and every decision is
  the same.
- model.onnx is written before the seal, so the manifest lists it (a changed byte stops the
  service: tests/served/test_onnx_served.py), and a model without it cannot be served with
  runtime onnx: the error names the file.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from credit_risk import artifact, scoring
from credit_risk.schema import decide
from training import data

TOLERANCE = 1e-5  # absolute, on probabilities in [0, 1]


@pytest.fixture(scope="module")
def both(trained):
    stored, _ = trained
    return (scoring.load(str(stored.tag)), scoring.load(str(stored.tag), runtime="onnx"))


def test_onnx_probabilities_and_decisions_match_sklearn_on_held_out_rows(both):
    sklearn_model, onnx_model = both
    held_out = data.snapshot()[1]
    expected = scoring.probabilities(sklearn_model, held_out)
    actual = scoring.probabilities(onnx_model, held_out)
    difference = np.abs(actual - expected)
    print(f"ONNX vs sklearn on {len(held_out)} held-out rows: max |difference| "
          f"{difference.max():.3g}, mean {difference.mean():.3g}")
    assert onnx_model.session is not None and sklearn_model.session is None
    assert difference.max() <= TOLERANCE
    threshold = sklearn_model.threshold
    assert [decide(p, threshold) for p in actual] == [decide(p, threshold) for p in expected]


def test_the_onnx_file_is_sealed_with_the_model(trained):
    stored, _ = trained
    folder = Path(stored.path)
    manifest = json.loads((folder / artifact.MANIFEST).read_text())
    assert manifest[scoring.ONNX_FILE] == artifact.sha256_of(folder / scoring.ONNX_FILE)
    assert stored.info.metadata["artifact"]["onnx_sha256"] == manifest[scoring.ONNX_FILE]


def test_a_model_without_its_onnx_file_cannot_run_on_onnx(trained, tmp_path):
    stored, _ = trained
    folder = tmp_path / "model"
    shutil.copytree(stored.path, folder)
    (folder / scoring.ONNX_FILE).unlink()
    with pytest.raises(artifact.ArtifactError, match=f"model file {folder / 'model.onnx'} is "
                                                     f"missing: CREDIT_RISK_RUNTIME=onnx"):
        scoring.onnx_session(folder, stored.info.metadata)
