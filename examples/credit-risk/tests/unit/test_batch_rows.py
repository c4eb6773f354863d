"""The batch job's vectorised row checks refuse exactly the rows the API (LoanApplication)
refuses, and name a field the API names."""

import math

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from credit_risk.schema import BOUNDS, EXAMPLE_INPUT, FEATURES, LoanApplication
from ops import batch
from training import data

# (field, value) pairs the API refuses or accepts, at and around every rule's edge.
EDGES = [(name, value) for name, (low, high) in BOUNDS.items()
         for value in (low, high, low - 1, high + 1, None)]
EDGES += [(name, value) for name in ("annual_income", "loan_amount", "debt_to_income",
                                     "credit_history_years")
          for value in (math.nan, math.inf, -math.inf, 0.5)]
EDGES += [("previous_defaults", 3), ("age_band", "17-18"), ("age_band", None),
          ("employment", "freelancer"), ("employment", "Employed"), ("purpose", ""),
          ("purpose", "car"), ("term_months", 37), ("term_months", 36), ("term_months", None),
          ("term_months", 60.0), ("term_months", 36.5), ("term_months", math.nan)]


def table_of(rows: list[dict]) -> pa.Table:
    """A typed table as a Parquet file would hold it (nulls where a value is None)."""
    return pa.Table.from_pylist([{"row_id": i, **row} for i, row in enumerate(rows)])


def api_refuses(row: dict) -> set[str] | None:
    """The fields the API names for a row, None when it accepts it."""
    try:
        LoanApplication.model_validate({name: row[name] for name in FEATURES})
    except ValidationError as error:
        return {str(e["loc"][0]) for e in error.errors()}
    return None


@pytest.mark.parametrize("name, value", EDGES)
def test_one_field_at_a_time(name, value):
    # mixed with valid rows so that the column has the type it would have in a file
    rows = [EXAMPLE_INPUT.model_dump(), {**EXAMPLE_INPUT.model_dump(), name: value}]
    table = table_of(rows)
    why = batch.reasons(table.to_pandas())  # what the job sees
    for row, reason in zip(table.to_pylist(), why, strict=True):  # what the file holds
        refused = api_refuses(row)
        assert (reason == "") == (refused is None), (row, reason, refused)
        if refused:
            assert reason.split(":")[0] in refused


def test_random_tables_agree_row_by_row():
    rng = np.random.default_rng(7)
    frame = data.generate(2_000, seed=5)[FEATURES].astype(object)
    for _ in range(400):  # break random cells of random rows
        row, name = rng.integers(len(frame)), FEATURES[rng.integers(len(FEATURES))]
        frame.at[row, name] = rng.choice([None, -5, 10**7, 2.5, "other", "x", 61, math.nan])
    frame.insert(0, "row_id", range(len(frame)))
    why = batch.reasons(frame)
    for record, reason in zip(frame.to_dict("records"), why, strict=True):
        clean = {k: (float(v) if isinstance(v, np.floating) else
                     int(v) if isinstance(v, np.integer) else v) for k, v in record.items()}
        refused = api_refuses(clean)
        assert (reason == "") == (refused is None), (clean, reason, refused)
