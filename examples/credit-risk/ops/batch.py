"""Score a file of loan applications in chunks: the embedded batch job.

    python -m ops.batch score INPUT OUTPUT_DIR [--model TAG] [--chunk-rows N]

INPUT is Parquet (`.parquet`) or CSV (`.csv`) with a `row_id` column and the model's
features. Each chunk is validated with the online service's rules (`LoanApplication`,
vectorised here), its accepted rows are scored through `credit_risk.scoring`, and two files
are written, each atomically (temporary name, then rename):

    OUTPUT_DIR/rejects/part-00000.parquet   row_id, reason
    OUTPUT_DIR/results/part-00000.parquet   row_id, probability_of_default, decision, model_version

A chunk whose results part exists is skipped, so a rerun after an interruption finishes the
job with the same output and no duplicates. Memory stays bounded by the chunk size. A
missing input, a wrong column type or an unknown model stops the job before any work with
one line (exit code 2).
"""

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.types as pat

from credit_risk import scoring
from credit_risk.schema import BOUNDS, CATEGORIES, FEATURES, MODEL_NAME, NUMERIC, decide

ID = "row_id"
COLUMNS = [ID, *FEATURES]
INTEGER_FIELDS = {"previous_defaults"}  # strict int in LoanApplication: a float is refused
DEFAULT_CHUNK_ROWS = 50_000


class JobError(Exception):
    """The job cannot start; the message is one line naming what is wrong."""


@dataclass
class Counts:
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    chunks: int = 0
    skipped: int = 0

    def add(self, accepted: int, rejected: int) -> None:
        self.read += accepted + rejected
        self.accepted += accepted
        self.rejected += rejected
        self.chunks += 1


# --8<-- [start:validate]
def check_columns(schema: pa.Schema, typed: bool = True) -> None:
    """Refuse a table whose columns cannot hold valid applications, before any work.
    `typed=False` (CSV: text, decoded per row) checks the names only."""
    missing = [name for name in COLUMNS if name not in schema.names]
    if missing:
        raise JobError(f"missing column(s) {missing}")
    extra = sorted(set(schema.names) - set(COLUMNS))
    if extra:  # the API forbids unknown fields: say so once rather than reject every row
        raise JobError(f"unexpected column(s) {extra}; the input holds {COLUMNS}")
    for name in FEATURES if typed else ():
        kind = schema.field(name).type
        if name in INTEGER_FIELDS:
            ok = pat.is_integer(kind) or pat.is_null(kind)
        elif name in CATEGORIES and name != "term_months":
            ok = pat.is_string(kind) or pat.is_large_string(kind) or pat.is_null(kind)
        else:
            ok = pat.is_integer(kind) or pat.is_floating(kind) or pat.is_null(kind)
        if not ok:
            raise JobError(f"column {name!r} has type {kind}, which cannot hold valid values")


def reasons(frame: pd.DataFrame) -> pd.Series:
    """Why each row would be refused by the API (LoanApplication), '' when it is valid.

    The same rules, vectorised: present and finite numbers within BOUNDS (whole numbers for
    counts), known categories. tests/unit/test_batch_rows.py checks the equivalence.
    """
    why = pd.Series("", index=frame.index, dtype=object)

    def refuse(bad, message: str) -> None:
        bad = np.asarray(bad, dtype=bool) & (why == "").to_numpy()
        why[bad] = message

    if frame[ID].isna().any():
        refuse(frame[ID].isna(), f"{ID}: missing")
    for name in FEATURES:
        column = frame[name]
        if name in NUMERIC:
            values = pd.to_numeric(column, errors="coerce").astype(float)
            refuse(values.isna() & column.isna(), f"{name}: missing")
            refuse(values.isna(), f"{name}: not a number")
            refuse(~np.isfinite(values), f"{name}: not a finite number")
            low, high = BOUNDS[name]
            refuse((values < low) | (values > high), f"{name}: outside [{low}, {high}]")
            if name in INTEGER_FIELDS:  # only CSV can get here with a fraction
                refuse(values % 1 != 0, f"{name}: not a whole number")
        else:
            allowed = CATEGORIES[name]
            refuse(column.isna(), f"{name}: missing")
            refuse(~column.isin(allowed), f"{name}: not one of {allowed}")
    return why
# --8<-- [end:validate]


def score_frame(model: scoring.LoadedModel, frame: pd.DataFrame) -> tuple[pa.Table, pa.Table]:
    """(results, rejects) of one chunk; the one function the embedded and the Ray jobs share."""
    why = reasons(frame)
    id_type = pa.Array.from_pandas(frame[ID]).type
    good = features(frame[why == ""])
    p = scoring.probabilities(model, good) if len(good) else np.empty(0)
    results = pa.table({
        ID: pa.array(good[ID].to_numpy(), id_type),
        # rounded as the API answers; the decision uses the exact probability, as the API does
        "probability_of_default": pa.array([round(float(x), 3) for x in p], pa.float64()),
        "decision": pa.array([decide(x, model.threshold) for x in p], pa.string()),
        "model_version": pa.array([model.version] * len(good), pa.string()),
    })
    bad = why != ""
    rejects = pa.table({ID: pa.array(frame.loc[bad, ID].to_numpy(), id_type),
                        "reason": pa.array(why[bad].tolist(), pa.string())})
    return results, rejects


def features(valid: pd.DataFrame) -> pd.DataFrame:
    """Valid rows with the column types the model was trained on (CSV decodes to text)."""
    valid = valid.copy()
    for name in NUMERIC:
        valid[name] = pd.to_numeric(valid[name]).astype(float)
    for name in (*INTEGER_FIELDS, "term_months"):
        valid[name] = pd.to_numeric(valid[name]).astype("int64")
    return valid


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write `path` whole or not at all: a crash leaves a temporary file, never half a part."""
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)


def open_input(path: Path, chunk_rows: int):
    """(rows, chunk iterator) after checking the file and its columns; raises JobError."""
    if not path.is_file():
        raise JobError(f"input {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            source = pq.ParquetFile(path)
            check_columns(source.schema_arrow)
            chunks = (batch.to_pandas() for batch in
                      source.iter_batches(batch_size=chunk_rows, columns=COLUMNS))
            return source.metadata.num_rows, chunks
        if suffix == ".csv":
            first = pd.read_csv(path, nrows=1_000)
            check_columns(pa.Schema.from_pandas(first, preserve_index=False), typed=False)
            return None, pd.read_csv(path, chunksize=chunk_rows, dtype={ID: first[ID].dtype})
    except (OSError, pa.ArrowException, ValueError, UnicodeDecodeError) as error:
        raise JobError(f"input {path} is not readable as {suffix[1:]}: "
                       f"{str(error).splitlines()[0]}") from None
    raise JobError(f"input {path}: unknown format {suffix!r} (use .parquet or .csv)")


def load_model(tag: str) -> scoring.LoadedModel:
    try:
        return scoring.load(tag)
    except Exception as error:  # bentoml's NotFound, a bad tag, a failed hash check
        raise JobError(f"model {tag!r} cannot be loaded: "
                       f"{str(error).splitlines()[0] or type(error).__name__}") from None


def prepare_output(out: Path, job: dict) -> None:
    """Create the output folders; refuse a folder that holds another job's output."""
    manifest = out / "job.json"
    if manifest.exists() and json.loads(manifest.read_text()) != job:
        raise JobError(f"{out} holds the output of another job ({manifest}); choose an empty "
                       f"folder")
    for name in ("results", "rejects"):
        (out / name).mkdir(parents=True, exist_ok=True)
    write_atomic_text(manifest, json.dumps(job, indent=2) + "\n")


def write_atomic_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def part(out: Path, kind: str, index: int) -> Path:
    return out / kind / f"part-{index:05d}.parquet"


# --8<-- [start:run]
def run(input_path: Path, out: Path, tag: str, chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: bool = True) -> Counts:
    """Score `input_path` into `out`, skipping chunks already written; returns the counts."""
    rows, chunks = open_input(input_path, chunk_rows)  # all that can stop the job is
    model = load_model(tag)                              # checked before any work
    stat = input_path.stat()
    prepare_output(out, {"input": str(input_path.resolve()), "bytes": stat.st_size,
                         "mtime_ns": stat.st_mtime_ns, "model": model.tag,
                         "chunk_rows": chunk_rows})
    from tqdm import tqdm

    counts = Counts()
    with tqdm(total=rows, unit="row", file=sys.stderr, disable=not progress) as bar:
        for index, frame in enumerate(chunks):
            done, rejected = part(out, "results", index), part(out, "rejects", index)
            if done.exists() and rejected.exists():  # written by an earlier, interrupted run
                accepted, refused = pq.read_metadata(done).num_rows, \
                    pq.read_metadata(rejected).num_rows
                if accepted + refused != len(frame):
                    raise JobError(f"{done} does not match chunk {index} of the input")
                counts.skipped += 1
            else:
                results, rejects = score_frame(model, frame)
                write_atomic(rejects, rejected)
                write_atomic(results, done)  # last: its presence marks the chunk done
                accepted, refused = results.num_rows, rejects.num_rows
            counts.add(accepted, refused)
            bar.update(len(frame))
    if rows is not None and counts.read != rows:
        raise RuntimeError(f"read {counts.read} rows of {rows}")
    return counts
# --8<-- [end:run]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.batch",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score INPUT into OUTPUT_DIR")
    score.add_argument("input", type=Path)
    score.add_argument("output_dir", type=Path)
    score.add_argument("--model", default=os.environ.get("CREDIT_RISK_MODEL") or
                       f"{MODEL_NAME}:latest", help="stored model tag (default: "
                       "$CREDIT_RISK_MODEL or credit_risk:latest)")
    score.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS,
                       help=f"rows per chunk and part file (default {DEFAULT_CHUNK_ROWS})")
    score.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.chunk_rows < 1:
        parser.exit(2, "error: --chunk-rows must be at least 1\n")
    try:
        counts = run(args.input, args.output_dir, args.model, args.chunk_rows,
                     progress=not args.no_progress)
    except JobError as error:
        parser.exit(2, f"error: {error}\n")
    print(f"read {counts.read} = accepted {counts.accepted} + rejected {counts.rejected} "
          f"in {counts.chunks} chunks ({counts.skipped} already done)")
    if counts.read != counts.accepted + counts.rejected:  # never, unless the code breaks
        print("error: counts do not add up", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
