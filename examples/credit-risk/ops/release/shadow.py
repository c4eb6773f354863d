"""The shadow stage: the candidate scores a copy of the live traffic, and nobody sees its answers.

nginx (deploy/shadow/nginx.conf.template) answers every /score request from production and
mirrors a copy to the candidate. nginx reads the candidate's answer and discards it, so a
candidate that is down, slow or failing changes nothing a client receives; what a slow one
can still cost is bounded by the copy's timeout (`ShadowPolicy.timeout_ms`, see the template).

The evidence is the candidate's own prediction log (its CREDIT_RISK_LOG_DIR) next to the
answers production gave the clients, joined on the application itself: both models scored
the same application, and an application's canonical form is the same on both sides. From
those pairs `compare()` computes how often the two decide differently, the decline rate per
age band with a confidence interval for the change, the shift of the score distribution
(two-sample Kolmogorov-Smirnov) and both latencies; `judge_shadow()` turns that into reasons
to stop, and an empty list means the candidate may go on to the canary.
"""

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
from scipy import stats

from credit_risk.jsonl_log import read_prediction_log
from credit_risk.schema import AGE_BANDS, FEATURES, NUMERIC
from ops.nginx import LoopbackProxy, Nginx, render
from ops.processes import EXAMPLE_DIR
from ops.release.canary import summarize
from training import data

TEMPLATE = EXAMPLE_DIR / "deploy" / "shadow" / "nginx.conf.template"
PAIR_COLUMNS = ["age_band", "production_decision", "candidate_decision",
                "production_probability", "candidate_probability", "production_version",
                "candidate_version"]


# --8<-- [start:shadow-policy]
@dataclass(frozen=True)
class ShadowPolicy:
    requests: int = 400             # live requests mirrored during the stage, at most
    max_seconds: float = 120        # ... and for at most this long
    min_pairs: int = 200            # fewer paired answers is no evidence: stop
    timeout_ms: int = 500           # the copy's connect/send/read timeouts (see the template)
    confidence: float = 0.95        # of the intervals below
    max_disagreement: float = 0.10  # share of applications the two models decide differently
    # (a retrain on a new snapshot of the same world differs on about 5 %: borderline cases)
    max_band_shift: float = 0.02    # decline-rate change per age band accepted without review:
    # a band is flagged when the whole interval of its change lies beyond this, so a small
    # sample (a wide interval) is not flagged on noise and a large one is on a small shift
    max_ks: float = 0.10            # largest accepted KS distance between the score distributions
    max_error_rate: float = 0.01    # mirrored copies that failed or timed out
    latency_slo_ms: float = 250     # p95 the SLO allows
    max_latency_ratio: float = 1.5  # ... and how much slower than production the candidate may be
# --8<-- [end:shadow-policy]


@dataclass
class Shadow:
    passed: bool
    reasons: list[str]
    evidence: dict           # compare()'s output, JSON-ready: the deployment log carries it
    records: list[dict] = field(default_factory=list)  # every client request: status, ms, ...
    seconds: float = 0.0

    def log_entry(self) -> dict:
        """What the deployment log keeps of this stage."""
        return {"passed": self.passed, "reasons": self.reasons, "seconds": self.seconds,
                "client_failures": sum(1 for r in self.records if r["status"] != 200),
                **self.evidence}


# -- nginx -------------------------------------------------------------------------------------

def render_config(run_dir: Path, port: int, production: str, candidate: str,
                  timeout_ms: int = ShadowPolicy.timeout_ms) -> Path:
    """Write run_dir/nginx.conf: production answers on `port`, `candidate` gets a copy
    (both given as host:port)."""
    return render(TEMPLATE, run_dir / "nginx.conf", RUN_DIR=str(run_dir), PORT=str(port),
                  PRODUCTION=production, CANDIDATE=candidate, SHADOW_TIMEOUT=f"{timeout_ms}ms")


class ShadowProxy(LoopbackProxy):
    """A standalone nginx with the shadow configuration (the tests and the notebook use it;
    the release process mirrors on production's own nginx with `mirror()`)."""

    def __init__(self, production: str, candidate: str, timeout_ms: int = ShadowPolicy.timeout_ms,
                 run_dir: Path | None = None, port: int | None = None) -> None:
        super().__init__("credit-risk-shadow-", run_dir, port)
        conf = render_config(self.run_dir, self.port, production, candidate, timeout_ms)
        self.nginx = Nginx(conf, self.run_dir, self.port)

    @property
    def shadow_log(self) -> Path:
        return self.run_dir / "shadow.log"


def mirror(environment, candidate: str, timeout_ms: int = ShadowPolicy.timeout_ms) -> Path:
    """Switch production's nginx (a release.environment.Production that serves a stable
    release) to the shadow configuration, mirroring to `candidate` (host:port); returns the
    shadow log. `environment.serve(environment.stable)` switches back."""
    render_config(environment.run_dir, environment.port, environment.stable.upstream,
                  candidate, timeout_ms)
    environment.nginx.reload()
    return environment.run_dir / "shadow.log"


# -- traffic and logs -------------------------------------------------------------------------

def application_key(row: dict) -> str:
    """An application's canonical form: the same on the client's side and in either model's
    prediction log (numbers as floats, features in order)."""
    return json.dumps([float(row[name]) if name in NUMERIC else row[name] for name in FEATURES])


def send(url: str, applications: list[dict], max_seconds: float = 60,
         headers: dict | None = None) -> list[dict]:
    """POST each application to url/score in turn over one keep-alive connection, as a client
    would; one record per request: application, status, production's answer, ms."""
    records, deadline = [], time.monotonic() + max_seconds
    with httpx.Client(timeout=30, headers=headers or {}) as client:
        for application in applications:
            if time.monotonic() > deadline:
                break
            started = time.monotonic()
            try:
                response = client.post(f"{url}/score", json=application)
                status, answer = response.status_code, response.json()
                request_id = response.headers.get("x-request-id")
            except (httpx.HTTPError, ValueError) as error:
                status, answer, request_id = repr(error), None, None
            records.append({"application": application, "status": status, "answer": answer,
                            "request_id": request_id,
                            "ms": round((time.monotonic() - started) * 1000, 2)})
    return records


def read_log(path: Path, uri: str, offset: int = 0) -> list[dict]:
    """Attempts of the template's JSON access log for `uri` from byte `offset` on (shadow.log
    has the copies, uri /_shadow; access.log production's answers, uri /score)."""
    if not path.is_file():
        return []
    with open(path, "rb") as file:
        file.seek(offset)
        lines = file.read().decode().splitlines()
    attempts = []
    for entry in map(json.loads, lines):
        if entry["uri"] == uri:
            seconds = entry["upstream_time"].split(", ")[-1]
            attempts.append({"status": entry["upstream_status"].split(", ")[-1] or
                             entry["status"], "request_id": entry["request_id"],
                             "ms": float(seconds) * 1000 if seconds not in ("", "-") else None})
    return attempts


def pair_answers(records: list[dict], candidate_log: list[dict]) -> pd.DataFrame:
    """One row per client request that both production (its answer to the client) and the
    candidate (a line of its prediction log) scored: age band, both decisions, both scores.
    An application sent twice pairs twice only if the candidate scored it twice."""
    waiting: dict[str, list[dict]] = {}
    for line in candidate_log:
        waiting.setdefault(application_key(line), []).append(line)
    rows = []
    for record in records:
        if record["status"] != 200:
            continue
        lines = waiting.get(application_key(record["application"]))
        if lines:
            line, answer = lines.pop(0), record["answer"]
            rows.append({"age_band": record["application"]["age_band"],
                         "production_decision": answer["decision"],
                         "candidate_decision": line["decision"],
                         "production_probability": answer["probability_of_default"],
                         "candidate_probability": line["probability_of_default"],
                         "production_version": answer["model_version"],
                         "candidate_version": line["model_version"]})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


# -- the comparison ---------------------------------------------------------------------------

# --8<-- [start:paired-interval]
def paired_shift(production_declines, candidate_declines, confidence: float = 0.95) -> dict:
    """The change of the decline rate from production to candidate on the same applications,
    with its confidence interval.

    Both models scored the same applications, so the two rates are paired: only the
    applications they decide differently carry information about the change. This is the
    Wald interval for a difference of paired proportions with Agresti and Min's adjustment
    (half an application added to each of the four cells), which keeps a sensible width
    when few or no decisions differ. Its half-width shrinks like 1/sqrt(n): a small sample
    gives a wide margin.
    """
    production = pd.Series(production_declines, dtype=bool).to_numpy()
    candidate = pd.Series(candidate_declines, dtype=bool).to_numpy()
    n = len(production)
    newly_declined = int((candidate & ~production).sum())
    newly_approved = int((production & ~candidate).sum())
    z = stats.norm.ppf(0.5 + confidence / 2)
    m, b, c = n + 2, newly_declined + 0.5, newly_approved + 0.5
    adjusted = (b - c) / m
    margin = z * math.sqrt(max((b + c) / m - adjusted ** 2, 0) / m)
    return {"n": n, "production": round(float(production.mean()), 4) if n else None,
            "candidate": round(float(candidate.mean()), 4) if n else None,
            "shift": round((newly_declined - newly_approved) / n, 4) if n else None,
            "low": round(adjusted - margin, 4), "high": round(adjusted + margin, 4),
            "newly_declined": newly_declined, "newly_approved": newly_approved}
# --8<-- [end:paired-interval]


def compare(pairs: pd.DataFrame, production_attempts: list[dict],
            candidate_attempts: list[dict], confidence: float = ShadowPolicy.confidence) -> dict:
    """The evidence of the shadow stage, JSON-ready: disagreement, decline rate per age band
    with intervals, the score distribution shift, and each side's latency and errors."""
    declined = {side: pairs[f"{side}_decision"] == "decline"
                for side in ("production", "candidate")}
    by_band = {band: paired_shift(declined["production"][rows], declined["candidate"][rows],
                                  confidence)
               for band in AGE_BANDS if (rows := pairs["age_band"] == band).any()}
    if len(pairs) >= 2:
        ks = stats.ks_2samp(pairs["production_probability"], pairs["candidate_probability"])
        score_shift = {"ks_statistic": round(float(ks.statistic), 4),
                       "p_value": round(float(ks.pvalue), 6),
                       "mean_production": round(float(pairs["production_probability"].mean()), 4),
                       "mean_candidate": round(float(pairs["candidate_probability"].mean()), 4)}
    else:
        score_shift = {"ks_statistic": None, "p_value": None}
    disagree = int((pairs["production_decision"] != pairs["candidate_decision"]).sum())
    timeouts = sum(1 for a in candidate_attempts if a["status"] == "504")
    return {
        "pairs": len(pairs),
        "mirrored": len(candidate_attempts),
        "versions": {"production": sorted(set(pairs["production_version"])),
                     "candidate": sorted(set(pairs["candidate_version"]))},
        "confidence": confidence,
        "disagreement": {"count": disagree,
                         "rate": round(disagree / len(pairs), 4) if len(pairs) else None},
        "decline_rate": {"overall": paired_shift(declined["production"],
                                                 declined["candidate"], confidence),
                         "by_age_band": by_band},
        "score_shift": score_shift,
        "latency": {"production": summarize(production_attempts),
                    "candidate": summarize(candidate_attempts) | {"timeouts": timeouts}},
    }


# --8<-- [start:judge-shadow]
def judge_shadow(evidence: dict, policy: ShadowPolicy | None = None) -> list[str]:
    """Reasons to stop the candidate after its shadow run; empty means it may go on."""
    policy = policy or ShadowPolicy()
    reasons = []
    candidate = evidence["latency"]["candidate"]
    if candidate["requests"] and candidate["error_rate"] > policy.max_error_rate:
        reasons.append(f"{candidate['errors']} of {candidate['requests']} mirrored requests "
                       f"failed or timed out ({candidate['timeouts']} after "
                       f"{policy.timeout_ms} ms); at most {policy.max_error_rate:.0%} may")
    if evidence["pairs"] < policy.min_pairs:
        reasons.append(f"only {evidence['pairs']} answers of the candidate could be compared "
                       f"with production's; {policy.min_pairs} are needed to judge it")
        return reasons  # the statistics below would describe noise
    rate = evidence["disagreement"]["rate"]
    if rate > policy.max_disagreement:
        reasons.append(f"the candidate decides {rate:.1%} of the applications differently "
                       f"from production; at most {policy.max_disagreement:.0%} may differ")
    level = f"{evidence['confidence']:.0%}"
    for band, shift in evidence["decline_rate"]["by_age_band"].items():
        if shift["low"] > policy.max_band_shift or shift["high"] < -policy.max_band_shift:
            reasons.append(
                f"decline rate on age band {band} moves from {shift['production']:.1%} to "
                f"{shift['candidate']:.1%} ({shift['n']} applications; {level} interval of "
                f"the change {shift['low']:+.1%} to {shift['high']:+.1%}), beyond the "
                f"±{policy.max_band_shift:.0%} accepted without review")
    ks = evidence["score_shift"]
    if ks["ks_statistic"] > policy.max_ks and ks["p_value"] < 1 - evidence["confidence"]:
        reasons.append(f"the score distribution moved: KS distance {ks['ks_statistic']:.3f} "
                       f"(p = {ks['p_value']:.2g}) is above {policy.max_ks}")
    p95, base = candidate["p95_ms"], evidence["latency"]["production"]["p95_ms"] or 0
    if (p95 is not None and p95 > policy.latency_slo_ms
            and p95 > policy.max_latency_ratio * base):
        reasons.append(f"p95 latency {p95:.0f} ms on the mirrored copies is above the SLO's "
                       f"{policy.latency_slo_ms:.0f} ms and {policy.max_latency_ratio}x "
                       f"production's {base:.0f} ms")
    return reasons
# --8<-- [end:judge-shadow]


# -- the stage --------------------------------------------------------------------------------

def shadow(url: str, access_log: Path, shadow_log: Path, candidate_log_dir: Path,
           policy: ShadowPolicy | None = None, applications: list[dict] | None = None,
           headers: dict | None = None, seed: int = 321) -> Shadow:
    """Run the stage: send live traffic to `url` (nginx with the shadow configuration),
    then compare the candidate's prediction log with production's answers and judge.

    `applications` default to `policy.requests` varied ones from the data generator
    (varied, so neither service's answer cache flatters it)."""
    policy = policy or ShadowPolicy()
    applications = applications or data.generate(policy.requests, seed)[FEATURES].to_dict(
        "records")
    offsets = {path: path.stat().st_size if path.is_file() else 0
               for path in (access_log, shadow_log)}
    since = datetime.now(UTC).isoformat(timespec="milliseconds")
    started = time.monotonic()
    records = send(url, applications[:policy.requests], policy.max_seconds, headers)
    # nginx logs a copy when it has finished; the last one may still be in flight.
    settle = time.monotonic() + policy.timeout_ms / 1000 + 2
    while (len(read_log(shadow_log, "/_shadow", offsets[shadow_log])) < len(records)
           and time.monotonic() < settle):
        time.sleep(0.05)
    candidate_log = [line for line in read_prediction_log(candidate_log_dir)
                     if line["time"] >= since[:23]] if candidate_log_dir.is_dir() else []
    evidence = compare(pair_answers(records, candidate_log),
                       read_log(access_log, "/score", offsets[access_log]),
                       read_log(shadow_log, "/_shadow", offsets[shadow_log]),
                       policy.confidence)
    evidence["requests"] = len(records)
    reasons = judge_shadow(evidence, policy)
    return Shadow(not reasons, reasons, evidence, records, round(time.monotonic() - started, 2))


def shadow_stage(production, container, policy: ShadowPolicy | None = None) -> Shadow:
    """Stage 5 of the release run: mirror production's live traffic (`production`, a
    release.environment.Production serving a stable release) to the started candidate
    `container`, judge it on its own logs, and switch production's nginx back to serving
    without a copy, whatever happened."""
    policy = policy or ShadowPolicy()
    shadow_log = mirror(production, container.upstream, policy.timeout_ms)
    try:
        return shadow(production.url, production.access_log, shadow_log,
                      production.log_dirs[container.name], policy)
    finally:
        production.serve(production.stable)
