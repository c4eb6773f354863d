"""The handbook CLI beyond the templates: the readiness score on our examples and on a
reader's own project, `card render --check`, and the CLI page matching the real commands."""

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT))  # the handbook package lives at the repository root
from handbook import cli, readiness  # noqa: E402

FLAGSHIP = ROOT / "examples" / "credit-risk"
QUICKSTART = ROOT / "examples" / "quickstart"
CLI_PAGE = ROOT / "docs" / "cli.md"
CHECK_LINE = re.compile(r"^\[([ x])\] ([\w-]+): ", re.M)


def handbook(*args, **run_args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handbook", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, **run_args)


def missing_checks(output: str) -> set[str]:
    return {key for mark, key in CHECK_LINE.findall(output) if mark == " "}


def test_readiness_scores_the_flagship_complete():
    result = handbook("readiness", FLAGSHIP)
    assert result.returncode == 0, result.stdout
    assert f"{len(readiness.CHECKS)} of {len(readiness.CHECKS)} readiness checks met" \
        in result.stdout
    assert len(CHECK_LINE.findall(result.stdout)) == len(readiness.CHECKS)


def test_readiness_names_what_the_quickstart_lacks_and_where_to_read_about_it():
    result = handbook("readiness", QUICKSTART)
    assert result.returncode == 1
    assert missing_checks(result.stdout) == {
        "container-build", "ci-workflow", "model-card", "runbook", "alert-rules"}
    assert "missing: no MODEL_CARD.md" in result.stdout
    assert "missing: no Prometheus alert rules" in result.stdout
    for check in readiness.CHECKS:
        if check.key in missing_checks(result.stdout):
            assert f"how: {check.url}" in result.stdout


@pytest.fixture
def ready_project(tmp_path):
    """A small project of a reader's own, not shaped like our examples, that meets every
    check: the flagship's card, runbook and alerts, and minimal versions of the rest."""
    project = tmp_path / "scorer"
    (project / "app").mkdir(parents=True)
    (project / "app" / "main.py").write_text('HEALTH = "/healthz"\n')
    (project / "app" / "test_main.py").write_text("def test_nothing():\n    pass\n")
    (project / "requirements.txt").write_text("fastapi==0.115.0  # web\nuvicorn==0.30.0\n")
    (project / "Containerfile").write_text("FROM python:3.11-slim\n")
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump(
        {"test": {"script": ["pip install -r requirements.txt", "pytest"]}}))
    (project / "docs").mkdir()
    shutil.copy(FLAGSHIP / "MODEL_CARD.md", project / "docs" / "MODEL_CARD.md")
    shutil.copy(FLAGSHIP / "RUNBOOK.md", project / "RUNBOOK.md")
    (project / "alerting").mkdir()
    shutil.copy(FLAGSHIP / "monitoring" / "alerts.yml", project / "alerting" / "rules.yaml")
    return project


def test_readiness_works_on_a_project_shaped_unlike_ours(ready_project):
    (ready_project / "app" / "blob.py").write_bytes(b"\xff\xfe not text")
    assert [missing for _, missing in readiness.assess(ready_project)] == \
        [None] * len(readiness.CHECKS)
    result = handbook("readiness", ready_project)
    assert result.returncode == 0, result.stdout


def drop_runbook_url(project):
    rules = project / "alerting" / "rules.yaml"
    text = rules.read_text()
    first = re.search(r"^ +runbook_url: .*\n", text, re.M)
    rules.write_text(text[:first.start()] + text[first.end():])


BREAKAGES = {
    "pinned-dependencies": (lambda p: (p / "requirements.txt").write_text("fastapi>=0.115\n"),
                            {"pinned-dependencies"}, "requirements.txt: fastapi>=0.115"),
    "tests": (lambda p: (p / "app" / "test_main.py").unlink(), {"tests"}, "no test_*.py"),
    "health-endpoints": (lambda p: (p / "app" / "main.py").write_text("x = 1\n"),
                         {"health-endpoints"}, "/readyz"),
    "container-build": (lambda p: (p / "Containerfile").unlink(), {"container-build"},
                        "no Dockerfile"),
    "ci-workflow": (lambda p: (p / ".gitlab-ci.yml").write_text("lint:\n  script: [ruff]\n"),
                    {"ci-workflow"}, ".gitlab-ci.yml never runs the tests"),
    "model-card": (lambda p: (p / "docs" / "MODEL_CARD.md").write_text(
        (FLAGSHIP / "MODEL_CARD.md").read_text().replace("## Factors", "## Influences")),
        {"model-card"}, "first: Factors: section missing"),
    "runbook": (lambda p: (p / "RUNBOOK.md").write_text(
        (FLAGSHIP / "RUNBOOK.md").read_text().replace("### Impact", "### Effect", 1)),
        {"runbook"}, "RUNBOOK.md has 1 problems"),
    # An alert without its runbook link fails both the alert rules and the runbook check.
    "alert-rules": (drop_runbook_url, {"alert-rules", "runbook"},
                    "alerts without a runbook_url: CreditRiskServiceDown"),
}


@pytest.mark.parametrize("key", BREAKAGES)
def test_readiness_names_exactly_what_broke(ready_project, key):
    breakage, expected, message = BREAKAGES[key]
    breakage(ready_project)
    result = handbook("readiness", ready_project)
    assert result.returncode == 1
    assert missing_checks(result.stdout) == expected, result.stdout
    assert message in result.stdout


def test_readiness_on_bad_input(tmp_path):
    result = handbook("readiness", tmp_path)
    assert result.returncode == 1
    assert missing_checks(result.stdout) == {check.key for check in readiness.CHECKS}
    for path in [tmp_path / "missing", FLAGSHIP / "README.md"]:
        result = handbook("readiness", path)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"error: {path} is not a folder\n"


def test_card_render_check_reports_a_stale_card_with_a_diff(tmp_path):
    """A project without a service: the card holds what the metrics and alerts give."""
    (tmp_path / "metrics.json").write_text(json.dumps({"rows": 10, "roc_auc": 0.8}))
    shutil.copy(FLAGSHIP / "monitoring" / "alerts.yml", tmp_path / "alerts.yml")
    out = tmp_path / "MODEL_CARD.md"
    assert handbook("card", "render", tmp_path).returncode == 0
    assert "| overall | 10 | 0.8 |" in out.read_text()
    fresh = handbook("card", "render", tmp_path, "--check")
    assert (fresh.returncode, fresh.stdout.split(":", 1)[1].strip()) == (
        0, "fresh (what the pipeline's outputs render)")

    (tmp_path / "metrics.json").write_text(json.dumps({"rows": 10, "roc_auc": 0.75}))
    before = out.read_text()
    stale = handbook("card", "render", tmp_path, "--check")
    assert stale.returncode == 1 and "stale" in stale.stdout
    assert "-| overall | 10 | 0.8 |" in stale.stdout
    assert "+| overall | 10 | 0.75 |" in stale.stdout
    assert out.read_text() == before, "--check must not write"


@pytest.mark.parametrize("metrics, message", [
    ("[0.8]", "must hold a JSON object"),
    ('{"overall": {"roc_auc": "high"}}', "holds something other than numbers"),
    ('{"roc_auc": 0.8,}', "not valid JSON at line 1"),
])
def test_card_render_on_bad_metrics(tmp_path, metrics, message):
    (tmp_path / "metrics.json").write_text(metrics)
    for command in [("card", "render", tmp_path),
                    ("card", "check", FLAGSHIP / "MODEL_CARD.md", "--metrics",
                     tmp_path / "metrics.json")]:
        result = handbook(*command)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


KNOWN_ISSUES = {
    "measured": {
        "slices": {"metric": "roc_auc", "floor": 0.75, "min_rows": 500, "tracking": "gate"},
        "ablation": {"file": "results/ablation.json", "tracking": "D2"},
        "feature_policy": {"file": "policy.yaml", "tracking": "review"},
        "staleness": {"file": "results/staleness.json", "tracking": "alert"}},
    "open": [{"issue": "Synthetic data only", "since": "2026-01-31", "tracking": "T-1"}],
}


@pytest.fixture
def issues_project(tmp_path):
    """A project without a service whose known_issues.yaml names planted results."""
    (tmp_path / "metrics.json").write_text(json.dumps({
        "overall": {"rows": 1000, "roc_auc": 0.8},
        "by_band": {"young": {"rows": 900, "roc_auc": 0.74}, "old": {"rows": 100, "roc_auc": 0.9}},
    }))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "ablation.json").write_text(json.dumps({"features": {
        "income": {"roc_auc_drop": 0.03, "standard_error": 0.002},
        "noise": {"roc_auc_drop": 0.0004, "standard_error": 0.0006},
        "on_the_edge": {"roc_auc_drop": 0.0004, "standard_error": 0.0002},
        "barely": {"roc_auc_drop": 0.0005, "standard_error": 0.0002}}}))
    (tmp_path / "results" / "staleness.json").write_text(json.dumps(
        {"floor": 0.7, "retrain_at_concept_drift": 0.42, "points": []}))
    (tmp_path / "policy.yaml").write_text(
        "allowed: {income: Affordability.}\n"
        "restricted:\n  age:\n    why: >-\n      Protected;\n      kept to show the checks.\n"
        "    requires: [A legal review.]\n")
    (tmp_path / "known_issues.yaml").write_text(yaml.safe_dump(KNOWN_ISSUES))
    return tmp_path


def known_issue_rows(card_text: str) -> list[list[str]]:
    body = card_text.split("### Known issues\n", 1)[1].split("\n#", 1)[0]
    return [line.strip("| ").split(" | ") for line in body.splitlines()
            if line.startswith("| ") and not line.startswith("| issue |")]


def test_known_issues_are_rendered_from_the_results_the_file_names(issues_project):
    result = handbook("card", "render", issues_project)
    assert result.returncode == 0, result.stderr
    card = (issues_project / "MODEL_CARD.md").read_text()
    assert known_issue_rows(card) == [
        ["`roc_auc` is 0.74 on band: young, below the floor of 0.75 set in `known_issues.yaml`",
         "Results by slice", "gate"],
        ["band: old holds 100 rows, fewer than the 500 that `known_issues.yaml` asks of a slice",
         "Results by slice", "gate"],
        ["`noise` earns no ROC AUC beyond noise: leaving it out loses 0.0004 ± 0.0006 (mean ± "
         "standard error), not above zero by two standard errors", "`results/ablation.json`",
         "D2"],
        ["`on_the_edge` earns no ROC AUC beyond noise: leaving it out loses 0.0004 ± 0.0002 "
         "(mean ± standard error), not above zero by two standard errors",
         "`results/ablation.json`", "D2"],
        ["Restricted input `age`: Protected; kept to show the checks.", "`policy.yaml`",
         "review"],
        ["The model goes stale: its ROC AUC falls below the floor of 0.7 at a concept drift of "
         "0.42, the retraining trigger", "`results/staleness.json`", "alert"],
        ["Synthetic data only", "not measured; open since 2026-01-31", "T-1"],
    ]
    assert not [problem for problem in cli.card.check(card) if "Known issues" in problem]


@pytest.mark.parametrize("change, message", [
    (lambda spec: spec["measured"]["slices"].update(floor="high"),
     "measured.slices: floor has the wrong type: 'high'"),
    (lambda spec: spec["measured"].update(slicez=spec["measured"].pop("slices")),
     "`measured` may hold only slices, ablation, feature_policy, staleness"),
    (lambda spec: spec["open"][0].pop("since"),
     "open issue 1 must hold exactly issue, since, tracking"),
    (lambda spec: spec["measured"]["ablation"].update(file="results/missing.json"),
     "results/missing.json does not exist"),
    (lambda spec: spec["measured"]["feature_policy"].update(file="metrics.json"),
     "feature policy metrics.json must map `restricted` inputs to a `why`"),
    (lambda spec: spec["measured"]["staleness"].update(file="metrics.json"),
     "staleness results metrics.json must hold floor and retrain_at_concept_drift"),
], ids=["wrong type", "unknown part", "missing field", "missing results", "not a policy",
        "not a staleness file"])
def test_a_bad_known_issues_file_stops_the_render_with_one_line(issues_project, change, message):
    spec = json.loads(json.dumps(KNOWN_ISSUES))
    change(spec)
    (issues_project / "known_issues.yaml").write_text(yaml.safe_dump(spec))
    result = handbook("card", "render", issues_project)
    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (issues_project / "MODEL_CARD.md").exists()


def test_card_render_of_a_missing_project_or_broken_service(tmp_path):
    result = handbook("card", "render", tmp_path / "nowhere")
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = handbook("card", "render", tmp_path, "--service", "nosuchmodule:Service")
    assert result.returncode == 2
    assert "cannot load the service nosuchmodule:Service" in result.stderr
    assert "ModuleNotFoundError" in result.stderr and "Traceback" not in result.stderr


def documented_commands() -> list[list[str]]:
    """Each `python -m handbook ...` line in a bash block of the CLI page, as arguments."""
    blocks = re.findall(r"^```bash\n(.*?)^```", CLI_PAGE.read_text(), re.M | re.S)
    return [shlex.split(line)[3:] for block in blocks for line in block.splitlines()
            if line.startswith("python -m handbook ")]


def subcommands(parser: argparse.ArgumentParser, prefix=()):
    """(command words, parser) for each runnable command."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield prefix, parser
    for action in actions:
        for name, sub in action.choices.items():
            yield from subcommands(sub, (*prefix, name))


def test_every_command_on_the_cli_page_is_a_real_one():
    commands = documented_commands()
    assert len(commands) >= 8
    for args in commands:
        if args == ["--help"]:
            continue
        cli.parser().parse_args(args)  # argparse exits (a test error) on an unknown option


def test_the_cli_page_documents_every_command_and_option():
    page = CLI_PAGE.read_text()
    documented = {tuple(args[:2]) if args[0] != "readiness" else ("readiness",)
                  for args in documented_commands() if args != ["--help"]}
    for words, parser in subcommands(cli.parser()):
        assert f"## {' '.join(words)}\n" in page, f"no section for {' '.join(words)}"
        assert words in documented, f"no example of {' '.join(words)}"
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert f"`{option}" in page, f"{' '.join(words)} {option} undocumented"


@pytest.mark.parametrize("command", [
    ("card", "check", "{missing}"),
    ("card", "render", FLAGSHIP, "--metrics", "{missing}"),
    ("card", "render", FLAGSHIP, "--alerts", "{missing}"),
    ("runbook", "check", "{missing}"),
    ("runbook", "check", FLAGSHIP / "RUNBOOK.md", "--alerts", "{missing}"),
    ("runbook", "render", "{missing}", "--out", "{folder}/RUNBOOK.md"),
], ids=lambda command: " ".join(str(word) for word in command[:2]) + f" {command[2:]}")
def test_a_missing_file_is_one_line_and_status_2(tmp_path, command):
    missing = tmp_path / "missing.file"
    args = [str(word).format(missing=missing, folder=tmp_path) for word in command]
    result = handbook(*args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert f"{missing} does not exist" in result.stderr


@pytest.mark.timeout(600)
def test_the_checker_installs_as_a_command_and_runs_from_any_folder(tmp_path):
    """`pip install <the repository>` puts `handbook` on the reader's PATH, with the
    templates as package data and none of the site's or examples' dependencies."""
    venv = tmp_path / "reader-venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    uv = shutil.which("uv", path=str(ROOT / ".venv" / "bin")) or shutil.which("uv")
    installed = subprocess.run([uv, "pip", "install", "--quiet", "--python", venv / "bin" /
                                "python", ROOT], capture_output=True, text=True, timeout=480)
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "somewhere-else"
    project = shutil.copytree(QUICKSTART, elsewhere / "my-service",
                              ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    result = subprocess.run([venv / "bin" / "handbook", "readiness", "my-service"],
                            cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr  # the quickstart lacks some practices
    assert "readiness checks met" in result.stdout
    rules = shutil.copy(FLAGSHIP / "monitoring" / "alerts.yml", project / "alerts.yml")
    drafted = subprocess.run([venv / "bin" / "handbook", "runbook", "render", rules,
                              "--out", "RUNBOOK.md"], cwd=project, capture_output=True,
                             text=True, timeout=120)
    assert drafted.returncode == 0, drafted.stderr  # the templates ship as package data
    assert "CreditRiskHighErrorRate" in (project / "RUNBOOK.md").read_text()
    listed = subprocess.run([uv, "pip", "list", "--python", venv / "bin" / "python"],
                            capture_output=True, text=True, timeout=120).stdout.lower()
    assert "bentoml" not in listed and "mkdocs" not in listed
