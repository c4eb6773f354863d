"""Checks on a training table before anything is fitted on it.

Two kinds of check, and every failure is reported (not just the first):

- Shape and values: the columns the pipeline needs, no nulls, numbers inside the range the
  service accepts, known categories, 0/1 labels, enough rows, few exact duplicates.
- The label profile, a defence against poisoned labels: the default rate overall must lie in
  a plausible band, and each segment (every value of every categorical column) must default
  about as much *more or less than the table overall* as it did in the reference data. The
  comparison is on the log-odds scale, relative to the table's own overall rate, so a
  portfolio that gets riskier as a whole (covariate drift) still passes, while relabelling
  one segment's defaults as repaid does not.

A real change in who defaults (concept drift) moves the profile too, and this check cannot
tell it from poisoning: both are labels that changed while the inputs did not. It stops
training either way. If monitoring confirms the world changed, print the new profile with
`label_profile(frame)`, review it, and update EXPECTED_OFFSETS in a reviewed change.
"""

import math

import pandas as pd

from credit_risk.schema import BOUNDS, CATEGORIES, FEATURES, TARGET

MIN_ROWS = 1_000
MAX_DUPLICATE_SHARE = 0.01
DEFAULT_RATE_BAND = (0.05, 0.80)

# Log-odds of default in each segment minus the log-odds overall, measured on 200 000 rows
# of reference data (data.generate(200_000, seed=0)): students default far more than the
# average applicant (+1.36), the over-65s less (-0.59).
EXPECTED_OFFSETS = {
    "age_band": {"18-25": 0.54, "26-35": 0.13, "36-50": -0.11, "51-65": -0.41, "65+": -0.59},
    "employment": {"employed": -0.32, "retired": 0.11, "self_employed": -0.16, "student": 1.36,
                   "unemployed": 1.49},
    "purpose": {"business": 0.20, "car": -0.14, "debt_consolidation": 0.13, "education": -0.13,
                "home_improvement": -0.14, "medical": 0.10, "other": -0.14},
    "term_months": {12: -0.11, 24: -0.05, 36: -0.01, 60: 0.12},
}
# A segment fails when its offset is further from the expected one than TOLERANCE plus
# Z standard errors (so small segments are judged more leniently); smaller ones are skipped.
TOLERANCE = 0.4
Z = 3.0
MIN_SEGMENT_ROWS = 100


class DataValidationError(ValueError):
    """The training table failed one or more checks; `problems` lists each one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"training data failed {len(problems)} check(s):\n- "
                         + "\n- ".join(problems))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def label_profile(frame: pd.DataFrame, decimals: int | None = 2) -> dict:
    """Each segment's default log-odds minus the overall log-odds, in EXPECTED_OFFSETS' shape."""
    overall = _logit(frame[TARGET].mean())
    profile = {}
    for column in CATEGORIES:
        counts = frame.groupby(column)[TARGET].agg(["sum", "size"])
        profile[column] = {}
        for level, row in counts.iterrows():
            # Half a default of continuity correction keeps a segment with none (or all) finite.
            offset = _logit((row["sum"] + 0.5) / (row["size"] + 1)) - overall
            key = level.item() if hasattr(level, "item") else level  # plain int, not numpy's
            profile[column][key] = offset if decimals is None else round(offset, decimals)
    return profile


def _shape_problems(frame: pd.DataFrame) -> list[str]:
    missing = [c for c in [*FEATURES, TARGET] if c not in frame.columns]
    if missing:
        return [f"missing columns: {missing}"]
    problems = []
    if len(frame) < MIN_ROWS:
        problems.append(f"only {len(frame)} rows; at least {MIN_ROWS} are needed to judge them")
    for column, nulls in frame[[*FEATURES, TARGET]].isna().sum().items():
        if nulls:
            problems.append(f"{column}: {nulls} null values")
    for column, (low, high) in BOUNDS.items():
        values = pd.to_numeric(frame[column], errors="coerce")
        not_numbers = values.isna() & frame[column].notna()
        outside = ((values < low) | (values > high) | not_numbers).sum()
        if outside:
            problems.append(f"{column}: {outside} values outside [{low}, {high}] or not numbers")
    fractional = (pd.to_numeric(frame["previous_defaults"], errors="coerce") % 1 > 0).sum()
    if fractional:
        problems.append(f"previous_defaults: {fractional} values are not whole numbers")
    for column, allowed in CATEGORIES.items():
        unknown = sorted(set(frame[column].dropna()) - set(allowed), key=str)
        if unknown:
            problems.append(f"{column}: unknown values {unknown[:5]}")
    labels = set(frame[TARGET].dropna())
    if not labels <= {0, 1}:
        problems.append(f"{TARGET}: labels must be 0 or 1, found {sorted(labels)[:5]}")
    duplicates = frame.duplicated().mean()
    if duplicates > MAX_DUPLICATE_SHARE:
        problems.append(f"{duplicates:.1%} of rows are exact duplicates "
                        f"(at most {MAX_DUPLICATE_SHARE:.0%} expected)")
    return problems


def _label_problems(frame: pd.DataFrame, expected: dict) -> list[str]:
    rate = frame[TARGET].mean()
    low, high = DEFAULT_RATE_BAND
    if not low <= rate <= high:
        return [f"overall default rate {rate:.3f} is outside the plausible band [{low}, {high}]"]
    problems = []
    observed = label_profile(frame, decimals=None)
    for column, offsets in expected.items():
        counts = frame.groupby(column)[TARGET].agg(["mean", "size"])
        for level, expected_offset in offsets.items():
            if level not in counts.index or counts.loc[level, "size"] < MIN_SEGMENT_ROWS:
                continue
            rows, segment_rate = int(counts.loc[level, "size"]), counts.loc[level, "mean"]
            expected_rate = _sigmoid(_logit(rate) + expected_offset)
            standard_error = 1 / math.sqrt(rows * expected_rate * (1 - expected_rate))
            allowed = TOLERANCE + Z * standard_error
            offset = observed[column][level]
            if abs(offset - expected_offset) > allowed:
                problems.append(
                    f"{column}={level}: default rate {segment_rate:.3f} over {rows} rows, expected "
                    f"about {expected_rate:.3f} at this table's overall rate {rate:.3f} "
                    f"(log-odds offset {offset:+.2f}, expected {expected_offset:+.2f} "
                    f"± {allowed:.2f})"
                )
    return problems


def check_training_frame(frame: pd.DataFrame, expected: dict = EXPECTED_OFFSETS) -> dict:
    """Raise DataValidationError naming every failed check; return the label profile if none."""
    problems = _shape_problems(frame)
    if not problems:  # the label profile means little on a table with broken values
        problems = _label_problems(frame, expected)
    if problems:
        raise DataValidationError(problems)
    return label_profile(frame)
