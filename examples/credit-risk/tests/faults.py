"""Bad candidates for the release tests and the automation notebook.

- `LabelsShuffledInBand`: a data snapshot whose export scrambled the labels of one age band
  (a join that matched the wrong rows, say). The model trained on it is fine overall and
  poor on that band, which only a per-slice gate notices.
- `faulty_source()`: the example's bento sources with a faulty entry point:
  `faulty_service.py`, a release that passes its smoke test and then fails under live
  traffic, or `skewed_service.py`, one that declines more applicants of one age band.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from credit_risk import schema
from ops.processes import EXAMPLE_DIR
from ops.release.candidate import Snapshot

TESTS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LabelsShuffledInBand(Snapshot):
    band: str = "65+"

    def frames(self):
        train_frame, held_out = super().frames()
        rows = train_frame["age_band"] == self.band
        shuffled = np.random.default_rng(self.seed).permutation(
            train_frame.loc[rows, schema.TARGET].to_numpy())
        train_frame.loc[rows, schema.TARGET] = shuffled
        return train_frame, held_out


def faulty_source(target: Path, entry: str = "faulty_service") -> Path:
    """Copy what the bentofile includes into `target`, plus the faulty entry point `entry`
    (a module in this folder)."""
    bentofile = yaml.safe_load((EXAMPLE_DIR / "bentofile.yaml").read_text())
    target.mkdir(parents=True, exist_ok=True)
    for pattern in bentofile["include"]:
        for path in EXAMPLE_DIR.glob(pattern):
            copy = target / path.relative_to(EXAMPLE_DIR)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, copy)
    shutil.copy(TESTS / f"{entry}.py", target / f"{entry}.py")
    bentofile["service"] = f"{entry}:CreditRisk"
    bentofile["include"].append(f"{entry}.py")
    (target / "bentofile.yaml").write_text(yaml.safe_dump(bentofile, sort_keys=False))
    return target
