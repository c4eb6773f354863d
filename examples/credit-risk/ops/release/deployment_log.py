"""Stage 8, record: the deployment log, one JSON line per release run, is also the record of
what is in production, so a later run (or a restarted machine) brings the same release back."""

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from ops.release.build import Release


def production_release(log_path: Path) -> Release | None:
    """The release the last run left in production, from the deployment log."""
    if not log_path.is_file():
        return None
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    for entry in reversed(lines):
        if entry.get("production_after"):
            return Release(**entry["production_after"])
    return None


def append(log_path: Path, entry: dict) -> None:
    """Append one run to the deployment log (JSON lines)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(json.dumps(entry, default=str) + "\n")


def entry(outcome, snapshot, production: Release | None, serving: Release | None,
          started_at: str) -> dict:
    """The deployment log's line for one run (`outcome` is a run.Outcome)."""
    canary_result = outcome.canary
    return {
        "run_id": uuid.uuid4().hex[:12],
        "started": started_at,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "snapshot": snapshot.spec(),
        "candidate": asdict(outcome.release) if outcome.release else (
            {"model": outcome.candidate.model} if outcome.candidate else None),
        "metrics": outcome.candidate.metrics["overall"] if outcome.candidate else None,
        "gate": {"passed": outcome.gate.passed, "reasons": outcome.gate.reasons,
                 "roc_auc": (outcome.gate.comparison.to_dict(orient="index")
                             if outcome.gate.comparison is not None else None)}
        if outcome.gate else None,
        "built": outcome.built,
        "shadow": outcome.shadow.log_entry() if outcome.shadow else None,
        "approved_by": outcome.approved_by,
        "canary": {"share": canary_result.share,
                   "seconds": canary_result.seconds, "stats": canary_result.stats,
                   "client_failures": sum(1 for r in canary_result.records
                                          if r["status"] != 200),
                   "reasons": canary_result.reasons} if canary_result else None,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "production_before": asdict(production) if production else None,
        "production_after": asdict(serving) if serving else None,
        "stages": dict(outcome.timings),
    }
