"""Stage 6, canary, and stage 7, promote or roll back: nginx sends a share of the live traffic
to the candidate; its error rate and latency are compared with production's at the same time."""

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from credit_risk.schema import FEATURES
from ops.podman import Container
from ops.release.environment import Production
from training import data


@dataclass(frozen=True)
class CanaryPolicy:
    share: int = 20                 # percent of the traffic the candidate gets
    requests: int = 300             # live requests sent during the canary, at most
    max_seconds: float = 60         # ... and for at most this long
    min_candidate_requests: int = 20  # fewer is no evidence: roll back
    check_every: int = 20           # requests between looks at the access log
    max_error_rate: float = 0.01    # the SLO: at most 1 % of candidate requests fail
    latency_slo_ms: float = 250     # p95 the SLO allows
    max_latency_ratio: float = 1.5  # and how much slower than production the candidate may be
    verify_requests: int = 30       # requests after the switch, to check who serves


@dataclass
class Canary:
    promote: bool
    reasons: list[str]
    share: int             # percent of the traffic the candidate had
    stats: dict            # per role: requests, errors, error_rate, p50_ms, p95_ms
    records: list[dict]    # every live request: phase, role, status, upstream, version, ms, t
    seconds: float


class Traffic:
    """Live traffic through nginx: one request after another, bounded in count and time.

    On a real service this is the users; here varied applications from the data generator
    (varied, so the service's answer cache does not flatter the latency).
    """

    def __init__(self, url: str, roles: dict[str, str] | None = None, seed: int = 123) -> None:
        self.url = url
        self.roles = roles or {}  # upstream address -> "production" or "candidate"
        self.bodies = data.generate(500, seed)[FEATURES].to_dict("records")
        self.records: list[dict] = []
        self.sent = 0
        self.started = time.monotonic()

    def send(self, count: int, phase: str, max_seconds: float = 60) -> None:
        deadline = time.monotonic() + max_seconds
        # No keep-alive: after a reload, each request meets nginx's current workers.
        with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for _ in range(count):
                if time.monotonic() > deadline:
                    break
                body = self.bodies[self.sent % len(self.bodies)]
                self.sent += 1
                started = time.monotonic()
                try:
                    response = client.post(f"{self.url}/score", json=body)
                    status, upstream = response.status_code, response.headers.get("x-upstream", "")
                    version = response.json().get("model_version") if status == 200 else None
                except httpx.HTTPError as error:
                    status, upstream, version = repr(error), "", None
                self.records.append({
                    "phase": phase, "role": self.roles.get(upstream, ""), "status": status,
                    "upstream": upstream, "version": version,
                    "ms": round((time.monotonic() - started) * 1000, 2),
                    "t": round(started - self.started, 3)})


def read_access_log(path: Path, offset: int) -> list[dict]:
    """nginx's JSON access-log lines from byte `offset` on, one entry per upstream attempt."""
    attempts = []
    with open(path, "rb") as file:
        file.seek(offset)
        for line in file.read().decode().splitlines():
            entry = json.loads(line)
            if entry["uri"] != "/score":
                continue
            for address, status, seconds in zip(entry["upstream"].split(", "),
                                                 entry["upstream_status"].split(", "),
                                                 entry["upstream_time"].split(", "),
                                                 strict=False):
                attempts.append({"upstream": address, "status": status,
                                 "ms": float(seconds) * 1000 if seconds != "-" else None})
    return attempts


def summarize(attempts: list[dict]) -> dict:
    errors = sum(1 for a in attempts if not a["status"].isdigit() or int(a["status"]) >= 500)
    latencies = [a["ms"] for a in attempts if a["ms"] is not None]
    percentiles = (statistics.quantiles(latencies, n=100, method="inclusive")
                   if len(latencies) >= 2 else [None] * 99)
    return {"requests": len(attempts), "errors": errors,
            "error_rate": round(errors / len(attempts), 4) if attempts else None,
            "p50_ms": percentiles[49] and round(percentiles[49], 2),
            "p95_ms": percentiles[94] and round(percentiles[94], 2)}


# --8<-- [start:canary-judge]
def judge(production: dict, candidate: dict, policy: CanaryPolicy, final: bool) -> list[str]:
    """Reasons the candidate breaches its SLO next to production; empty means healthy.

    Errors count against at least `min_candidate_requests`, so one early failure already
    breaches a 1 % budget: the canary stops there instead of waiting for more.
    """
    reasons = []
    errors, requests = candidate["errors"], candidate["requests"]
    if errors / max(requests, policy.min_candidate_requests) > policy.max_error_rate:
        reasons.append(f"error rate {errors} of {requests} is above the SLO's "
                       f"{policy.max_error_rate:.0%} (production: {production['errors']} of "
                       f"{production['requests']})")
    p95, base = candidate["p95_ms"], production["p95_ms"] or 0
    if (requests >= policy.min_candidate_requests and p95 > policy.latency_slo_ms
            and p95 > policy.max_latency_ratio * base):
        reasons.append(f"p95 latency {p95:.0f} ms is above the SLO's {policy.latency_slo_ms:.0f}"
                       f" ms and {policy.max_latency_ratio}x production's {base:.0f} ms")
    if final and not reasons and requests < policy.min_candidate_requests:
        reasons.append(f"only {requests} requests reached the candidate; "
                       f"{policy.min_candidate_requests} are needed to judge it")
    return reasons
# --8<-- [end:canary-judge]


def canary(environment: Production, candidate: Container,
           policy: CanaryPolicy = CanaryPolicy()) -> tuple[Canary, "Traffic"]:
    """Route `share` % of the live traffic to the candidate, watch both in nginx's access
    log, and stop early once the candidate has breached; the decision is in the result."""
    production = environment.stable
    started = time.monotonic()
    traffic = Traffic(environment.url, {production.upstream: "production",
                                        candidate.upstream: "candidate"})
    offset = environment.access_log.stat().st_size
    environment.route({production: 100 - policy.share, candidate: policy.share})
    while traffic.sent < policy.requests and time.monotonic() - started < policy.max_seconds:
        traffic.send(policy.check_every, "canary", policy.max_seconds)
        attempts = read_access_log(environment.access_log, offset)
        stats = {role: summarize([a for a in attempts if a["upstream"] == c.upstream])
                 for role, c in [("production", production), ("candidate", candidate)]}
        if judge(stats["production"], stats["candidate"], policy, final=False):
            break  # breached: every further request would be one more at risk
    reasons = judge(stats["production"], stats["candidate"], policy, final=True)
    return Canary(not reasons, reasons, policy.share, stats, traffic.records,
                  round(time.monotonic() - started, 2)), traffic


def promote(environment: Production, candidate: Container, traffic: Traffic,
            policy: CanaryPolicy = CanaryPolicy()) -> None:
    """All traffic to the candidate, then retire the previous release."""
    previous = environment.stable
    environment.serve(candidate)
    traffic.send(policy.verify_requests, "after")
    previous.remove()


def roll_back(environment: Production, candidate: Container, traffic: Traffic,
              policy: CanaryPolicy = CanaryPolicy()) -> None:
    """All traffic back to production, then stop the candidate."""
    environment.serve(environment.stable)
    traffic.send(policy.verify_requests, "after")
    candidate.remove()
