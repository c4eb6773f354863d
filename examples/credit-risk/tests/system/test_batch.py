"""The embedded batch job (`python -m ops.batch`): the API's rules on every row, counts that
add up, a rerun after a crash that finishes without duplicates, and one-line refusals."""

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from credit_risk import scoring
from credit_risk.schema import FEATURES, LoanApplication
from ops import batch
from ops.processes import EXAMPLE_DIR, kill, stop, wait_until
from training import data

# Rows the API would refuse, planted in an otherwise clean table: (row_id, field, value).
BAD_ROWS = [(3, "annual_income", math.nan), (10, "employment", "freelancer"),
            (17, "debt_to_income", 3.0), (25, "term_months", 36.5), (40, "purpose", None),
            (41, "loan_amount", -1.0), (99, "previous_defaults", None)]


def applications(path: Path, rows: int, seed: int = 21) -> pd.DataFrame:
    """A Parquet file of `rows` applications with BAD_ROWS planted; returns the table."""
    frame = data.generate(rows, seed=seed)[FEATURES]
    frame = frame.astype({"term_months": float, "previous_defaults": "Int64"}, copy=True)
    for row_id, name, value in BAD_ROWS:
        frame.loc[row_id, name] = value
    frame.insert(0, "row_id", np.arange(rows) + 1_000_000)
    frame.to_parquet(path, index=False, row_group_size=rows // 4)
    return frame


def job(*args, check=True, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.batch", *map(str, args)], cwd=EXAMPLE_DIR,
                          capture_output=True, text=True, check=check, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, **popen)


def read(folder: Path) -> pd.DataFrame:
    parts = sorted(folder.glob("*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


def outputs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, rejects) sorted by row id, whatever the number and names of the parts."""
    return tuple(read(out / kind).sort_values("row_id", ignore_index=True)
                 for kind in ("results", "rejects"))


def check_against_the_api(frame: pd.DataFrame, results: pd.DataFrame, rejects: pd.DataFrame,
                          model: scoring.LoadedModel) -> None:
    """Every row is answered once; rejects are the rows LoanApplication refuses; scores are
    what the API's scoring function gives."""
    assert len(results) + len(rejects) == len(frame)
    assert not set(results.row_id) & set(rejects.row_id)
    refused = set()
    for record in frame.head(120).to_dict("records"):
        row = {k: (None if v is pd.NA else v) for k, v in record.items() if k in FEATURES}
        try:
            LoanApplication.model_validate(row)
        except ValueError:
            refused.add(record["row_id"])
    assert refused == {1_000_000 + r for r, *_ in BAD_ROWS} == set(rejects.row_id)
    sample = results.head(50)
    online = scoring.score(model, [LoanApplication.model_validate(
        {k: (None if v is pd.NA else v) for k, v in r.items() if k in FEATURES} |
        {"previous_defaults": int(r["previous_defaults"]), "term_months": int(r["term_months"])})
        for r in frame.set_index("row_id").loc[sample.row_id].reset_index().to_dict("records")])
    assert list(sample.probability_of_default) == [s.probability_of_default for s in online]
    assert list(sample.decision) == [s.decision for s in online]
    assert set(results.model_version) == {model.version}


@pytest.mark.timeout(300)
def test_a_rerun_after_a_crash_finishes_the_job_without_duplicates(trained, tmp_path):
    stored, _ = trained
    source = tmp_path / "applications.parquet"
    frame = applications(source, 40_000)
    once, crashed = tmp_path / "once", tmp_path / "crashed"

    finished = job("score", source, once, "--chunk-rows", 4_000, "--model", stored.tag)
    assert "read 40000 = accepted 39993 + rejected 7 in 10 chunks" in finished.stdout
    assert "row/s" in finished.stderr  # the progress bar

    # A real interruption: SIGKILL the job when its second part file appears.
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.batch", "score", str(source), str(crashed), "--chunk-rows",
         "4000", "--model", str(stored.tag), "--no-progress"], cwd=EXAMPLE_DIR,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        wait_until(lambda: batch.part(crashed, "results", 1).exists(), 120,
                   "the second part file", alive=lambda: process.poll() is None)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=15)
    finally:
        kill(process)
        stop(process)
    written = len(list((crashed / "results").glob("part-*.parquet")))
    assert 2 <= written < 10, f"{written} parts: not interrupted half-way"

    rerun = job("score", source, crashed, "--chunk-rows", 4_000, "--model", stored.tag,
                "--no-progress")
    assert f"({written} already done)" in rerun.stdout
    assert "read 40000 = accepted 39993 + rejected 7 in 10 chunks" in rerun.stdout
    assert not list(crashed.rglob(".*.tmp"))
    for a, b in zip(outputs(once), outputs(crashed), strict=True):
        pd.testing.assert_frame_equal(a, b)
        assert not a.row_id.duplicated().any()
    check_against_the_api(frame, *outputs(once), scoring.load(str(stored.tag)))


@pytest.mark.timeout(240)
def test_csv_input_gets_the_same_answers(trained, tmp_path):
    stored, _ = trained
    frame = applications(tmp_path / "a.parquet", 3_000)
    frame.to_csv(tmp_path / "a.csv", index=False)
    job("score", tmp_path / "a.parquet", tmp_path / "p", "--model", stored.tag, "--no-progress")
    job("score", tmp_path / "a.csv", tmp_path / "c", "--model", stored.tag, "--no-progress")
    for a, b in zip(outputs(tmp_path / "p"), outputs(tmp_path / "c"), strict=True):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.timeout(240)
def test_what_cannot_work_stops_the_job_before_any_work_in_one_line(trained, tmp_path):
    stored, _ = trained
    good = tmp_path / "good.parquet"
    frame = applications(good, 200)
    frame.astype({"annual_income": str}).to_parquet(tmp_path / "typed.parquet", index=False)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    frame.drop(columns=["row_id"]).to_parquet(tmp_path / "no_id.parquet", index=False)
    cases = {
        (tmp_path / "missing.parquet", stored.tag): "does not exist",
        (tmp_path / "broken.parquet", stored.tag): "is not readable as parquet",
        (tmp_path / "typed.parquet", stored.tag): "column 'annual_income' has type string",
        (tmp_path / "no_id.parquet", stored.tag): "missing column(s) ['row_id']",
        (good, "credit_risk:doesnotexist"): "model 'credit_risk:doesnotexist' cannot be",
    }
    for number, ((source, tag), expected) in enumerate(cases.items()):
        out = tmp_path / f"out{number}"
        answer = job("score", source, out, "--model", tag, check=False)
        assert answer.returncode == 2, answer
        lines = answer.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], answer.stderr
        assert not out.exists()  # before any work: not even the output folder
