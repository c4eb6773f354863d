"""The shadow stage's judgement (ops/release/shadow.py) on constructed evidence: which
differences between candidate and production stop a release, and that the margin on a
band's decline rate comes from its sample size, not a fixed number."""

import pandas as pd

from credit_risk.schema import AGE_BANDS
from ops.release.shadow import PAIR_COLUMNS, ShadowPolicy, compare, judge_shadow, paired_shift

POLICY = ShadowPolicy()


def band_pairs(band: str, n: int, declined: float = 0.2, newly_declined: float = 0.0,
               newly_approved: float = 0.0) -> list[dict]:
    """n applications of one band: production declines a share `declined`; the candidate
    also declines a further share `newly_declined` and approves `newly_approved` of them."""
    rows = []
    n_declined, n_new = round(n * declined), round(n * newly_declined)
    n_approved = round(n * newly_approved)
    for i in range(n):
        production = i < n_declined
        candidate = (production and i >= n_approved) or n_declined <= i < n_declined + n_new
        rows.append({"age_band": band,
                     "production_decision": "decline" if production else "approve",
                     "candidate_decision": "decline" if candidate else "approve",
                     "production_probability": 0.7 if production else 0.2 + (i % 10) / 100,
                     "candidate_probability": 0.7 if candidate else 0.2 + (i % 10) / 100,
                     "production_version": "p", "candidate_version": "c"})
    return rows


def evidence(rows: list[dict], candidate_ms: float = 12.0, candidate_status: str = "200",
             requests: int | None = None):
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    production = [{"status": "200", "ms": 10.0}] * (requests or len(rows))
    candidate = [{"status": candidate_status, "ms": candidate_ms}] * (requests or len(rows))
    return compare(pairs, production, candidate, POLICY.confidence)


def every_band(n: int = 300, **shift) -> list[dict]:
    return [row for band in AGE_BANDS for row in band_pairs(band, n, **shift)]


def test_a_candidate_that_decides_like_production_passes():
    assert judge_shadow(evidence(every_band()), POLICY) == []


def test_a_decline_rate_shift_in_one_band_beyond_its_interval_stops_the_candidate():
    rows = every_band() + band_pairs("65+", 400, newly_declined=0.06)
    reasons = judge_shadow(evidence(rows), POLICY)
    assert len(reasons) == 1 and "age band 65+" in reasons[0], reasons
    band = evidence(rows)["decline_rate"]["by_age_band"]["65+"]
    assert band["low"] > POLICY.max_band_shift  # the whole interval lies beyond the tolerance


def test_a_small_sample_widens_the_margin_so_the_same_shift_is_not_flagged():
    small = paired_shift([False] * 30, [False] * 27 + [True] * 3)      # 10 % newly declined
    large = paired_shift([False] * 600, [False] * 540 + [True] * 60)   # the same 10 %
    small_margin, large_margin = small["high"] - small["low"], large["high"] - large["low"]
    assert small_margin > 3 * large_margin
    assert small["low"] < POLICY.max_band_shift < large["low"]
    rows = [r for r in every_band() if r["age_band"] != "65+"]
    assert judge_shadow(evidence(rows + band_pairs("65+", 30, newly_declined=0.1)), POLICY) == []
    reasons = judge_shadow(evidence(rows + band_pairs("65+", 600, newly_declined=0.1)), POLICY)
    assert any("age band 65+" in reason for reason in reasons)


def test_no_changed_decision_still_has_an_interval_of_some_width():
    shift = paired_shift([True] * 10 + [False] * 40, [True] * 10 + [False] * 40)
    assert shift["shift"] == 0 and shift["low"] < 0 < shift["high"]


def test_decisions_swapped_both_ways_keep_the_rates_but_count_as_disagreement():
    rows = every_band(newly_declined=0.06, newly_approved=0.06)
    found = evidence(rows)
    assert abs(found["decline_rate"]["overall"]["shift"]) < 0.001
    reasons = judge_shadow(found, POLICY)
    assert len(reasons) == 1 and "differently" in reasons[0], reasons


def test_a_moved_score_distribution_is_a_reason_even_without_changed_decisions():
    rows = every_band()
    for row in rows:
        if row["candidate_decision"] == "approve":
            row["candidate_probability"] += 0.2  # riskier scores, still below the threshold
    reasons = judge_shadow(evidence(rows), POLICY)
    assert len(reasons) == 1 and "KS distance" in reasons[0], reasons


def test_a_candidate_that_is_down_is_stopped_for_its_errors_and_missing_evidence():
    # nginx logs 502 for each copy it could not deliver; the candidate logged nothing.
    reasons = judge_shadow(evidence([], candidate_ms=0.2, candidate_status="502",
                                    requests=300), POLICY)
    assert len(reasons) == 2
    assert "300 of 300 mirrored requests failed" in reasons[0]
    assert "only 0 answers" in reasons[1]


def test_a_slow_candidate_is_stopped_on_latency():
    reasons = judge_shadow(evidence(every_band(), candidate_ms=400), POLICY)
    assert len(reasons) == 1 and "p95 latency 400 ms" in reasons[0], reasons


def test_the_evidence_is_json_ready():
    import json

    json.dumps(evidence(every_band()))
