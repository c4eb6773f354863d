"""The release process: from a new data snapshot to a promoted (or rolled back) release.

Eight stages, each a module with its inputs and outputs spelled out, run in order:

1. train     Snapshot -> Candidate          candidate.py: train (reuses a stored version)
2. gate      Candidate, production -> Gate  gate.py: absolute thresholds, and no worse than
                                            production overall or on any age band
3. build     Candidate -> Release           build.py: bento + container image, keyed by their
                                            inputs: the same inputs build nothing
4. smoke     Release -> Container           smoke.py: start the image, /readyz, a known answer
5. shadow    Container, Production -> Shadow  shadow.py: nginx mirrors live traffic to the
                                            candidate, whose answers no client sees; its
                                            decisions are compared with production's
6. canary    Container, Production -> Canary  canary.py: nginx sends a share of the traffic to
                                            the candidate; error rate and latency are compared
7. release                                  canary.py: promote, or roll back
8. record    -> deployments.jsonl           deployment_log.py: one JSON line per run

"Production" (environment.py) is nginx on a loopback port in front of one podman container
per live release. The command line is `python -m ops.release`.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from ops.processes import EXAMPLE_DIR
from ops.release import deployment_log
from ops.release.build import Release, build
from ops.release.canary import Canary, CanaryPolicy, canary, promote, roll_back
from ops.release.candidate import Candidate, Snapshot, train_candidate
from ops.release.environment import Production
from ops.release.gate import Gate, GatePolicy, gate
from ops.release.shadow import Shadow, ShadowPolicy, shadow_stage
from ops.release.smoke import smoke_test
from ops.release.stages import STAGES, StageReport


@dataclass
class Outcome:
    decision: str  # promoted | rolled_back | stopped_at_gate | stopped_at_shadow
    #   | awaiting_approval | unchanged | failed, or stopped_after_<stage> (asked to stop)
    reason: str
    candidate: Candidate | None = None
    gate: Gate | None = None
    release: Release | None = None
    built: dict | None = None
    shadow: Shadow | None = None
    approved_by: str | None = None  # who let the candidate have real traffic
    canary: Canary | None = None
    timings: dict = field(default_factory=dict)
    log_entry: dict = field(default_factory=dict)


def run(snapshot: Snapshot, production: Production, log_path: Path,
        source: Path = EXAMPLE_DIR, gate_policy: GatePolicy = GatePolicy(),
        shadow_policy: ShadowPolicy | None = ShadowPolicy(),
        canary_policy: CanaryPolicy = CanaryPolicy(), approved_by: str | None = None,
        show_progress: bool = True, console: Console | None = None,
        until: str | None = None) -> Outcome:
    """Run the stages on `snapshot` against `production`, log the run and return its outcome.
    `until` names a stage (gate, build or smoke) to stop after, leaving production alone: a
    CI job that only builds and checks the image. `shadow_policy=None` leaves the shadow
    stage out (a change that cannot move decisions, say, goes straight to the canary).

    A credit model is high-risk: no candidate gets real traffic (the canary) until a person
    has approved it, by name, in `approved_by`. Without it the run ends after the shadow
    stage as `awaiting_approval`, with the evidence in the deployment log for the reviewer;
    the approved rerun reuses the stored model and the built image."""
    live = deployment_log.production_release(log_path)
    if until is None and live and production.release_of(production.stable) != live:
        if production.stable is not None:
            production.stable.remove()
        production.serve(production.launch(live, "production"))  # bring production back
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with StageReport(show_progress, console) as report:
        outcome = run_stages(snapshot, production, live, source, gate_policy, shadow_policy,
                             canary_policy, approved_by, report, until)
        outcome.timings = report.timings
        with report.stage("record") as done:
            serving = production.release_of(production.stable) or live
            outcome.log_entry = deployment_log.entry(outcome, snapshot, live, serving,
                                                     started_at)
            deployment_log.append(log_path, outcome.log_entry)
            done["detail"] = f"{outcome.decision} -> {log_path}"
    outcome.log_entry["stages"]["record"] = report.timings["record"]
    return outcome


def run_stages(snapshot: Snapshot, production: Production, live: Release | None,
               source: Path, gate_policy: GatePolicy, shadow_policy: ShadowPolicy | None,
               canary_policy: CanaryPolicy, approved_by: str | None, report: StageReport,
               until: str | None = None) -> Outcome:
    """The stages in order, and what they decided. The first stage to stop the release ends
    the run with its decision and reason; any stage's failure is a failed run, with what the
    stages before it found."""
    outcome = Outcome("failed", "")

    def stop_after(stage: str) -> bool:
        if until != stage:
            return False
        outcome.decision = f"stopped_after_{stage}"
        outcome.reason = f"asked to stop after {stage}"
        for name in STAGES[STAGES.index(stage) + 1:-1]:
            report.skip(name, f"--until {stage}")
        return True

    try:
        with report.stage("train") as done:
            outcome.candidate = candidate = train_candidate(snapshot)
            done["detail"] = f"{candidate.model}{' (stored already)' if candidate.reused else ''}"
        with report.stage("gate") as done:
            outcome.gate = checked = gate(candidate, live.model if live else None, gate_policy)
            done["detail"] = "passed" if checked.passed else "; ".join(checked.reasons)
        if not checked.passed:
            outcome.decision = "stopped_at_gate"
            outcome.reason = "; ".join(checked.reasons)
            for name in ["build", "smoke", "shadow", "canary", "release"]:
                report.skip(name, "stopped at the gate")
            return outcome
        if stop_after("gate"):
            return outcome
        with report.stage("build") as done:
            outcome.release, outcome.built = release, built = build(candidate.model, source)
            done["detail"] = (f"{release.image}: bento {'built' if built['bento'] else 'reused'}, "
                              f"image {'built' if built['image'] else 'reused'}")
        if stop_after("build"):
            return outcome
        if live == release:
            outcome.decision = "unchanged"
            outcome.reason = f"{release.image} is already in production"
            for name in ["smoke", "shadow", "canary", "release"]:
                report.skip(name, "already in production")
            return outcome
        with report.stage("smoke") as done:
            container = smoke_test(production, release)
            done["detail"] = f"{container.url} gave the known answer"
        if stop_after("smoke"):
            container.remove()
            return outcome
        first = production.stable is None
        try:
            if first or shadow_policy is None:
                report.skip("shadow", "no release in production yet: nothing to compare with"
                            if first else "not asked for")
            else:
                with report.stage("shadow") as done:
                    outcome.shadow = shadow_stage(production, container, shadow_policy)
                    done["detail"] = ("passed" if outcome.shadow.passed
                                      else "; ".join(outcome.shadow.reasons))
                if not outcome.shadow.passed:
                    container.remove()
                    outcome.decision = "stopped_at_shadow"
                    outcome.reason = "; ".join(outcome.shadow.reasons)
                    for name in ["canary", "release"]:
                        report.skip(name, "stopped in the shadow stage")
                    return outcome
            if not approved_by:
                container.remove()
                outcome.decision = "awaiting_approval"
                outcome.reason = ("no one has approved this candidate for real traffic"
                                  f"{'' if first else ' (the shadow evidence is logged)'}: "
                                  "rerun with --approved-by NAME once reviewed")
                for name in ["canary", "release"]:
                    report.skip(name, "awaiting approval")
                return outcome
            outcome.approved_by = approved_by
            if first:
                report.skip("canary", "no release in production yet: nothing to compare with")
                with report.stage("release") as done:
                    production.serve(container)
                    done["detail"] = f"first release: {release.version} takes all traffic"
                outcome.decision, outcome.reason = "promoted", "first release"
                return outcome
            with report.stage("canary") as done:
                outcome.canary, traffic = canary(production, container, canary_policy)
                done["detail"] = ("healthy" if outcome.canary.promote
                                  else "; ".join(outcome.canary.reasons))
            with report.stage("release") as done:
                if outcome.canary.promote:
                    promote(production, container, traffic, canary_policy)
                    outcome.decision = "promoted"
                    outcome.reason = f"canary healthy at {canary_policy.share} % of traffic"
                else:
                    roll_back(production, container, traffic, canary_policy)
                    outcome.decision = "rolled_back"
                    outcome.reason = "; ".join(outcome.canary.reasons)
                serving = production.release_of(production.stable)
                done["detail"] = f"{outcome.decision}: {serving.version} serves"
        except BaseException:
            if production.stable is not container:  # whatever failed, production keeps serving
                if production.stable is not None:
                    production.serve(production.stable)
                container.remove()
            raise
    except Exception as error:
        outcome.decision, outcome.reason = "failed", f"{type(error).__name__}: {error}"
    return outcome
