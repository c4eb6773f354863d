"""Score a service repository against the handbook's production-readiness checklist.

Everything is detected from files and their content, so it works on any repository, not
only the handbook's examples. Each check returns None when met, or what is missing.
"""

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from handbook import card, runbook
from handbook.alerts import find_alert_files, load_alerts
from handbook.inputs import InputError, project_files, read_text

REPO_URL = os.environ.get("HANDBOOK_REPO_URL", "https://github.com/deployment-handbook/handbook")
LOCK_FILES = ["poetry.lock", "uv.lock", "Pipfile.lock", "pdm.lock", "conda-lock.yml",
              "requirements.lock"]
TEST_FILES = ["test_*.py", "*_test.py"]
HEALTH_PATH = re.compile(r"/(readyz|livez|healthz|health)\b")
CONTAINER_FILES = ["Dockerfile", "Dockerfile.*", "*.Dockerfile", "Containerfile",
                   "bentofile.yaml"]
CI_FILES = [".github/workflows/*.yml", ".github/workflows/*.yaml", ".gitlab-ci.yml",
            ".circleci/config.yml", "Jenkinsfile", "azure-pipelines.yml",
            "bitbucket-pipelines.yml"]
RUNS_TESTS = re.compile(r"\b(pytest|make test|tox|nox|npm test|go test)\b")
CARD_FILES = ["MODEL_CARD.md", "model_card.md", "MODELCARD.md", "modelcard.md"]
RUNBOOK_FILES = ["RUNBOOK.md", "runbook.md"]


@dataclass
class Check:
    key: str
    title: str
    chapter: str  # page and anchor under the handbook's docs/
    missing: Callable[[Path], str | None]

    @property
    def url(self) -> str:
        return f"{REPO_URL}/blob/main/docs/{self.chapter}"


def scanned(path: Path) -> str:
    """A file's text for a pattern search: an undecodable byte or an unreadable file in a
    reader's repository must not stop the whole score."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def relative(paths: list[Path], root: Path) -> str:
    return ", ".join(str(path.relative_to(root)) for path in paths)


def pinned_dependencies(root: Path) -> str | None:
    requirements = project_files(root, "requirements*.txt")
    if not requirements and not project_files(root, *LOCK_FILES):
        return "no requirements*.txt and no lock file"
    loose = []
    for path in requirements:
        for line in scanned(path).splitlines():
            line = line.split(" #", 1)[0].strip().rstrip("\\").strip()
            if line and not line.startswith(("#", "-")) and "==" not in line and " @ " not in line:
                loose.append(f"{path.relative_to(root)}: {line}")
    if loose:
        more = f" and {len(loose) - 3} more" if len(loose) > 3 else ""
        return f"not pinned with ==: {'; '.join(loose[:3])}{more}"
    return None


def tests(root: Path) -> str | None:
    return None if project_files(root, *TEST_FILES) else "no test_*.py or *_test.py files"


def health_endpoints(root: Path) -> str | None:
    for path in project_files(root, "*.py", "*.yml", "*.yaml", "*.toml", "*.conf"):
        if HEALTH_PATH.search(scanned(path)):
            return None
    return "no code, test or manifest mentions /readyz, /livez, /healthz or /health"


def container_build(root: Path) -> str | None:
    if project_files(root, *CONTAINER_FILES):
        return None
    return "no Dockerfile, Containerfile or bentofile.yaml"


def ci_workflow(root: Path) -> str | None:
    workflows = project_files(root, *CI_FILES)
    if not workflows:
        return "no CI workflow (.github/workflows/*.yml, .gitlab-ci.yml, Jenkinsfile, ...)"
    if not any(RUNS_TESTS.search(scanned(path)) for path in workflows):
        return f"{relative(workflows, root)} never runs the tests (pytest, make test, tox, ...)"
    return None


def problems_in(path: Path, root: Path, problems: list[str], command: str) -> str | None:
    if not problems:
        return None
    return (f"{path.relative_to(root)} has {len(problems)} problems, first: {problems[0]} "
            f"(see `python -m handbook {command} {path}`)")


def model_card(root: Path) -> str | None:
    cards = project_files(root, *CARD_FILES)
    if not cards:
        return "no MODEL_CARD.md"
    try:
        problems = card.check(read_text(cards[0], "model card"))
    except InputError as error:
        return str(error)
    return problems_in(cards[0], root, problems, "card check")


def all_alerts(root: Path) -> list[dict]:
    return [alert for path in find_alert_files(root) for alert in load_alerts(path)]


def runbook_complete(root: Path) -> str | None:
    runbooks = project_files(root, *RUNBOOK_FILES)
    if not runbooks:
        return "no RUNBOOK.md"
    try:
        problems = runbook.check(read_text(runbooks[0], "runbook"), all_alerts(root))
    except InputError as error:
        return str(error)
    return problems_in(runbooks[0], root, problems, "runbook check")


def alert_rules(root: Path) -> str | None:
    try:
        alerts = all_alerts(root)
    except InputError as error:
        return str(error)
    if not alerts:
        return "no Prometheus alert rules"
    unlinked = [alert["name"] for alert in alerts if not alert.get("runbook_url")]
    return f"alerts without a runbook_url: {', '.join(unlinked)}" if unlinked else None


CHECKS = [
    Check("pinned-dependencies", "every dependency pinned to an exact version",
          "practices/containerization.md#what-good-looks-like", pinned_dependencies),
    Check("tests", "automated tests", "getting-started.md#the-three-layers-of-tests", tests),
    Check("health-endpoints", "health endpoints for probes and load balancers",
          "getting-started.md#why-bentoml", health_endpoints),
    Check("container-build", "a container build", "practices/containerization.md"
          "#how-from-model-to-bento-to-image", container_build),
    Check("ci-workflow", "a CI workflow that runs the tests", "checklist.md#automated-deployment",
          ci_workflow),
    Check("model-card", "a complete model card", "practices/documentation.md#the-model-card",
          model_card),
    Check("runbook", "a runbook with a section for every alert",
          "practices/documentation.md#the-runbook", runbook_complete),
    Check("alert-rules", "alert rules, each linking to its runbook section",
          "practices/monitoring.md#alerts-tested-like-code", alert_rules),
]


def assess(root: Path) -> list[tuple[Check, str | None]]:
    """Each check with what is missing (None when met)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    return [(check, check.missing(root)) for check in CHECKS]


def report(root: Path, results: list[tuple[Check, str | None]]) -> str:
    met = sum(missing is None for _, missing in results)
    lines = [f"{root}: {met} of {len(results)} readiness checks met", ""]
    for check, missing in results:
        lines.append(f"[{'x' if missing is None else ' '}] {check.key}: {check.title}")
        if missing is not None:
            lines += [f"      missing: {missing}", f"      how: {check.url}"]
    return "\n".join(lines)
