"""Stage 1, train: a data snapshot becomes a stored candidate model (or reuses one)."""

from dataclasses import asdict, dataclass, field

import pandas as pd

import train
from training import data, registry
from training.model import DEFAULT_PARAMS


@dataclass(frozen=True)
class Snapshot:
    """A data snapshot: here the generator's arguments; with real data, a dated extract."""

    rows: int = 20_000
    seed: int = 0
    covariate_drift: float = 0.0
    concept_drift: float = 0.0

    def spec(self) -> dict:
        return asdict(self)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(training rows, held-out rows), as train.run() draws them."""
        return data.snapshot(self.rows, self.seed, self.covariate_drift, self.concept_drift)


@dataclass
class Candidate:
    model: str                 # credit_risk:<version>
    metrics: dict              # on the snapshot's held-out rows, overall and per age band
    held_out: pd.DataFrame = field(repr=False)
    reused: bool               # the version was already stored: nothing was trained


def train_candidate(snapshot: Snapshot) -> Candidate:
    """Train on the snapshot and store the model, or reuse the stored version of the same
    inputs (the version is derived from the data, the parameters, the code and libraries)."""
    train_frame, held_out = snapshot.frames()
    version = registry.model_version(data.data_hash(train_frame), DEFAULT_PARAMS)
    reused = registry.stored(version) is not None
    stored, metrics = train.train_frames(snapshot.spec(), train_frame, held_out)
    return Candidate(str(stored.tag), metrics, held_out, reused)
