"""Release a model: `python -m ops.release --seed 1 --rows 20000` (see ops/release/run.py).

From the example folder, with the virtual environment active (root, for podman):

    python -m ops.release --seed 1 --rows 20000   # train on snapshot 1, shadow it, then stop
    python -m ops.release --seed 1 --rows 20000 --approved-by "A. Reviewer"   # canary, release

It refuses to train a candidate while the model's code (training/registry.py, CODE_FILES) has
uncommitted changes, or outside git: a released model must come from reviewed, committed code.
`--allow-uncommitted` lifts that for development; the model's lineage then says "uncommitted".
"""

import argparse
import signal
import sys
from dataclasses import fields
from pathlib import Path

from credit_risk.settings import Settings
from ops.release.canary import CanaryPolicy
from ops.release.candidate import Snapshot
from ops.release.environment import Production
from ops.release.run import run
from ops.release.shadow import ShadowPolicy
from training import registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in fields(Snapshot):  # --rows, --seed, --covariate-drift, --concept-drift
        parser.add_argument(f"--{option.name.replace('_', '-')}", type=type(option.default),
                            default=option.default)
    parser.add_argument("--log", type=Path, default=None,
                        help="the deployment log (default: <state dir>/deployments.jsonl)")
    parser.add_argument("--port", type=int, default=8080, help="nginx's loopback port")
    parser.add_argument("--share", type=int, default=CanaryPolicy.share,
                        help="percent of the traffic the canary gets")
    parser.add_argument("--approved-by", metavar="NAME",
                        help="who approved this candidate for real traffic (the canary); "
                             "without it the run ends after the shadow stage")
    parser.add_argument("--no-shadow", action="store_true",
                        help="leave the shadow stage out and go from smoke to canary")
    parser.add_argument("--until", choices=["gate", "build", "smoke"],
                        help="stop after this stage and leave production alone")
    parser.add_argument("--keep-serving", action="store_true",
                        help="keep nginx and production running until Ctrl-C")
    parser.add_argument("--allow-uncommitted", action="store_true",
                        help="train from code with uncommitted changes (development only)")
    args = parser.parse_args()
    if not args.allow_uncommitted and (reason := registry.unreviewed_code()):
        parser.exit(1, f"refusing to train a candidate: {reason} "
                       "(commit it, or pass --allow-uncommitted)\n")
    snapshot = Snapshot(**{option.name: getattr(args, option.name) for option in fields(Snapshot)})
    log_path = args.log or Settings.from_env().state_dir / "deployments.jsonl"
    production = Production(port=args.port)
    outcome = None
    try:
        outcome = run(snapshot, production, log_path,
                      shadow_policy=None if args.no_shadow else ShadowPolicy(),
                      canary_policy=CanaryPolicy(share=args.share),
                      approved_by=args.approved_by, until=args.until)
        print(f"{outcome.decision}: {outcome.reason}")
        if args.keep_serving and production.stable:
            print(f"serving {production.stable.image} on {production.url} (Ctrl-C to stop)",
                  flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            production.nginx.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        production.close()
    succeeded = {"promoted", "unchanged", "awaiting_approval", f"stopped_after_{args.until}"}
    sys.exit(0 if outcome and outcome.decision in succeeded else 1)


if __name__ == "__main__":
    main()
