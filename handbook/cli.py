"""The handbook's command line: model cards, runbooks and a production-readiness score.

Exit status: 0 when everything checked is complete, 1 when a check found problems (they are
listed), 2 on bad input such as a missing file or malformed YAML (one line on stderr).
"""

import argparse
import sys
from pathlib import Path

from handbook import card, facts, readiness, runbook
from handbook.alerts import find_alert_files, load_alerts
from handbook.inputs import InputError, load_json, read_text


def print_problems(path: Path, problems: list[str], complete: str) -> int:
    if not problems:
        print(f"{path}: {complete}")
        return 0
    print(f"{path}: {len(problems)} problems")
    for problem in problems:
        print(f"  - {problem}")
    return 1


def card_render(args) -> int:
    out = args.out or Path(args.project) / "MODEL_CARD.md"
    collected = facts.collect(args.project, args.metrics, args.alerts, args.service)
    previous = read_text(out, "model card") if out.is_file() else ""
    text = card.render(collected, previous)
    if args.check:
        diff = card.staleness(previous, text, str(out))
        print(f"{out}: " + ("stale; render it again. What would change:\n" + diff if diff
                            else "fresh (what the pipeline's outputs render)"))
        return 1 if diff else 0
    out.write_text(text)
    left = len(card.check(text))
    print(f"wrote {out}" + (f"; {left} items still to fill in: python -m handbook card check "
                            f"{out}" if left else ""))
    return 0


def card_check(args) -> int:
    measured = load_json(args.metrics, "metrics file") if args.metrics else None
    problems = card.check(read_text(args.card, "model card"), measured)
    complete = "complete" + (f", and its numbers match {args.metrics}" if measured else "")
    return print_problems(args.card, problems, complete)


def alerts_for(paths: list[Path] | None, folder: Path) -> list[dict]:
    files = paths if paths is not None else find_alert_files(folder)
    return [alert for path in files for alert in load_alerts(path)]


def runbook_render(args) -> int:
    if args.out.exists():
        raise InputError(f"{args.out} exists; the draft would overwrite it (choose another --out)")
    alerts = [alert for path in args.rules for alert in load_alerts(path)]
    args.out.write_text(runbook.render(alerts, args.title or args.out.resolve().parent.name))
    print(f"wrote {args.out} with {len(alerts)} alert sections to fill in")
    return 0


def runbook_check(args) -> int:
    text = read_text(args.runbook, "runbook")
    alerts = alerts_for(args.alerts, args.runbook.resolve().parent)
    if not alerts:
        print(f"note: no alert rules found next to {args.runbook}; pass --alerts FILE",
              file=sys.stderr)
    return print_problems(args.runbook, runbook.check(text, alerts),
                          f"complete for {len(alerts)} alerts")


def readiness_score(args) -> int:
    results = readiness.assess(args.path)
    print(readiness.report(args.path, results))
    return 0 if all(missing is None for _, missing in results) else 1


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m handbook", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True)

    card_commands = commands.add_parser("card", help="model cards").add_subparsers(
        dest="action", required=True)
    render = card_commands.add_parser(
        "render", help="fill the model card from the pipeline's outputs, keeping written text")
    render.add_argument("project", type=Path, help="the service's folder")
    render.add_argument("--metrics", type=Path,
                        help="metrics JSON from training (default: PROJECT/metrics.json)")
    render.add_argument("--alerts", type=Path, action="append",
                        help="Prometheus rule file (repeatable; default: found in PROJECT)")
    render.add_argument("--service", help="BentoML service as module:Class "
                        "(default: the service in PROJECT/bentofile.yaml)")
    render.add_argument("--out", type=Path, help="the card (default: PROJECT/MODEL_CARD.md)")
    render.add_argument("--check", action="store_true", help="write nothing; exit 1 with a "
                        "diff if the card differs from the render (the artifact hash aside)")
    render.set_defaults(run=card_render)
    check = card_commands.add_parser("check", help="list what a model card is missing")
    check.add_argument("card", type=Path)
    check.add_argument("--metrics", type=Path,
                       help="metrics JSON: every number in the card must equal it")
    check.set_defaults(run=card_check)

    runbook_commands = commands.add_parser("runbook", help="runbooks").add_subparsers(
        dest="action", required=True)
    draft = runbook_commands.add_parser("render", help="write a runbook draft from alert rules")
    draft.add_argument("rules", type=Path, nargs="+", help="Prometheus rule files")
    draft.add_argument("--out", type=Path, default=Path("RUNBOOK.md"))
    draft.add_argument("--title", help="service name for the heading (default: the folder's)")
    draft.set_defaults(run=runbook_render)
    verify = runbook_commands.add_parser(
        "check", help="check a runbook against the alert rules, both ways")
    verify.add_argument("runbook", type=Path, nargs="?", default=Path("RUNBOOK.md"))
    verify.add_argument("--alerts", type=Path, action="append",
                        help="Prometheus rule file (repeatable; default: found beside RUNBOOK)")
    verify.set_defaults(run=runbook_check)

    score = commands.add_parser("readiness", help="score a service repository against the "
                                "handbook's production-readiness checklist")
    score.add_argument("path", type=Path)
    score.set_defaults(run=readiness_score)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
