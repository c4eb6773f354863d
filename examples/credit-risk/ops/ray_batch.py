"""The batch job on Ray Data: the same checks and scoring as `ops.batch`, spread over a
cluster's CPUs.

    ray start --head                       # or: an existing cluster
    python -m ops.ray_batch score INPUT.parquet OUTPUT_DIR [--address auto] [--concurrency 2]

Writes OUTPUT_DIR/results/*.parquet and OUTPUT_DIR/rejects/*.parquet with the embedded job's
columns and rows (file names and order are Ray's; no rejects folder when nothing is
rejected). Every node must reach INPUT, OUTPUT_DIR
and the model store (BENTOML_HOME): on several machines, shared storage. Ray retries failed
tasks within a run; unlike the embedded job, a rerun starts from the beginning.
"""

import argparse
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ops import batch
from ops.processes import EXAMPLE_DIR


def worker_env() -> dict:
    """What every worker process needs: this example on its path, the same model store,
    one OpenMP thread per process (the actors are the parallelism)."""
    return {"PYTHONPATH": str(EXAMPLE_DIR), "OMP_NUM_THREADS": "1",
            "BENTOML_HOME": os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml"))}


def connect(address: str | None = None, **init_args) -> None:
    """Join the cluster at `address` (None: start a one-node cluster for this process), its
    workers given `worker_env()` as Ray's runtime environment."""
    import ray

    ray.init(address=address, runtime_env={"env_vars": worker_env()}, **init_args)


# --8<-- [start:ray-scorer]
class Scorer:
    """One per actor: loads the model once, then scores every batch it is given."""

    def __init__(self, tag: str) -> None:
        self.model = batch.load_model(tag)

    def __call__(self, frame):
        results, rejects = batch.score_frame(self.model, frame)
        # one table per batch: a reject has a reason and no score, a result the reverse
        return pa.concat_tables([results, rejects], promote_options="default")


def run(input_path: Path, out: Path, tag: str, concurrency: int = 2,
        batch_rows: int = 10_000, num_cpus: float = 1) -> batch.Counts:
    """Score `input_path` on the connected Ray cluster; returns the counts."""
    import ray

    source = pq.ParquetFile(input_path)  # refuse a bad input or model before any work,
    batch.check_columns(source.schema_arrow)  # as the embedded job does
    model = batch.load_model(tag)  # every actor loads this exact version, not "latest"
    # Ray 2.60's default Parquet reader starts 32 actors, a Python process each, to read the
    # files' footers: for a job over a few files that costs more than the scoring (minutes on
    # two cores). The previous reader reads a file in one task.
    ray.data.DataContext.get_current().use_datasource_v2 = False
    # A file is read as one block per row group, and one block goes to one actor: split it
    # into blocks of `batch_rows` so that every actor gets work.
    blocks = max(1, -(-source.metadata.num_rows // batch_rows))
    scored = ray.data.read_parquet(str(input_path), columns=batch.COLUMNS) \
        .repartition(blocks).map_batches(
        Scorer, fn_constructor_args=(model.tag,),
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        batch_size=batch_rows, batch_format="pandas", num_cpus=num_cpus,
    ).materialize()
    scored.map_batches(_rows, fn_kwargs={"rejects": False}, batch_format="pyarrow") \
        .write_parquet(str(out / "results"))
    scored.map_batches(_rows, fn_kwargs={"rejects": True}, batch_format="pyarrow") \
        .write_parquet(str(out / "rejects"))
# --8<-- [end:ray-scorer]
    counts = batch.Counts()
    counts.add(_rows_in(out / "results"), _rows_in(out / "rejects"))
    if counts.read != source.metadata.num_rows:
        raise RuntimeError(f"read {source.metadata.num_rows} rows, wrote {counts.read}")
    return counts


def _rows_in(folder: Path) -> int:
    """Rows in the Parquet files Ray wrote to `folder` (none, and no folder, for no rows)."""
    return sum(pq.read_metadata(part).num_rows for part in folder.glob("*.parquet"))


def _rows(table: pa.Table, rejects: bool) -> pa.Table:
    is_reject = pc.is_valid(table["reason"])
    if rejects:
        return table.filter(is_reject).select([batch.ID, "reason"])
    return table.filter(pc.invert(is_reject)).drop_columns(["reason"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.ray_batch",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score INPUT (Parquet) into OUTPUT_DIR")
    score.add_argument("input", type=Path)
    score.add_argument("output_dir", type=Path)
    score.add_argument("--model", default=os.environ.get("CREDIT_RISK_MODEL")
                       or f"{batch.MODEL_NAME}:latest")
    score.add_argument("--address", default=None,
                       help="Ray cluster (`auto`: the one `ray start` began); default: a "
                            "local one for this run")
    score.add_argument("--concurrency", type=int, default=2, help="scoring actors")
    args = parser.parse_args(argv)
    if args.input.suffix.lower() != ".parquet" or not args.input.is_file():
        parser.exit(2, f"error: input {args.input} is not an existing .parquet file\n")
    if any(args.output_dir.glob("*/*.parquet")):
        parser.exit(2, f"error: {args.output_dir} holds an earlier output; choose an empty "
                       f"folder\n")
    try:
        batch.load_model(args.model)
        batch.check_columns(pq.ParquetFile(args.input).schema_arrow)
    except (batch.JobError, pa.ArrowException) as error:
        parser.exit(2, f"error: {str(error).splitlines()[0]}\n")
    connect(args.address)
    counts = run(args.input, args.output_dir, args.model, args.concurrency)
    print(f"read {counts.read} = accepted {counts.accepted} + rejected {counts.rejected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
