"""GitHub Actions workflows and the pre-commit config: valid offline, and running what we test.

Every workflow file (the handbook's and each example's) is checked against GitHub's workflow
JSON schema with check-jsonschema, using the schema it ships (no network). So is each workflow
the chapter shows inline. The `make` targets the workflows call must exist in the Makefile,
so CI runs the same commands as `make test`.
"""

import re
import subprocess

import pytest
import yaml

from conftest import BIN, ROOT

WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.y*ml"),
                    *ROOT.glob("examples/*/.github/workflows/*.y*ml")])
IDS = [str(p.relative_to(ROOT)) for p in WORKFLOWS]
CHAPTER = ROOT / "docs" / "practices" / "automation.md"


def check_workflows(*paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *paths],
        capture_output=True, text=True, timeout=120)


def steps(workflow: dict):
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def test_every_workflow_matches_githubs_schema():
    assert len(WORKFLOWS) >= 4, IDS
    result = check_workflows(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-24.04\n"
                      "    steps:\n      - uses: actions/checkout@v4\n        run: both\n")
    assert check_workflows(broken).returncode != 0


def test_workflows_the_chapter_shows_inline_are_valid(tmp_path):
    blocks = [block for block in re.findall(
        r'```yaml title="[^"]*\.github/workflows/[^"]+"\n(.*?)```', CHAPTER.read_text(),
        flags=re.S) if not block.startswith("--8<--")]  # included files are checked above
    assert blocks, "the chapter shows a calling workflow"
    paths = []
    for number, block in enumerate(blocks):
        paths.append(tmp_path / f"inline-{number}.yml")
        paths[-1].write_text(block)
    result = check_workflows(*paths)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", [p for p in WORKFLOWS if p.parent.parent.parent == ROOT],
                         ids=lambda p: p.name)
def test_make_targets_the_workflows_run_exist(workflow):
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, flags=re.M))
    commands = " ".join(step.get("run", "") for step in steps(yaml.safe_load(
        workflow.read_text())))
    commands += (ROOT / ".ci" / "run").read_text() if ".ci/run" in commands else ""
    called = set(re.findall(r"\bmake ([a-z][\w-]*)", commands))
    assert called <= targets, f"{workflow.name} runs make targets the Makefile lacks"


def test_ci_and_the_weekly_upstream_job_run_make_test():
    for name in ["ci.yml", "upstream.yml"]:
        workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
        assert any(".ci/run" in step.get("run", "") for step in steps(workflow)), name
    upstream = yaml.safe_load((ROOT / ".github" / "workflows" / "upstream.yml").read_text())
    assert "schedule" in upstream[True]  # PyYAML reads the key `on` as True
    assert any("make upgrade-lock" in step.get("run", "") for step in steps(upstream))


def test_the_published_site_is_built_from_the_tested_run():
    """No second execution of the notebooks for the site: the CI job that ran `make test`
    builds the site after it, and the publishing job needs that job."""
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    runs = [step.get("run", "") for step in jobs["test"]["steps"]]
    tested = next(i for i, run in enumerate(runs) if ".ci/run" in run)
    built = next(i for i, run in enumerate(runs) if "mkdocs build --strict" in run)
    assert tested < built
    uploads = [step for step in jobs["test"]["steps"]
               if step.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "site"
    assert jobs["publish"]["needs"] == "test"
    assert any(step.get("uses", "").startswith("actions/deploy-pages")
               for step in jobs["publish"]["steps"])
    assert not any("notebooks" in run for run in runs[tested + 1:])


def test_notebook_checks_workflow_is_reusable_and_runs_nbmake():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "notebook-checks.yml").read_text())
    assert "workflow_call" in workflow[True]
    assert any("--nbmake" in step.get("run", "") for step in steps(workflow))


def test_pre_commit_config_pins_the_locked_tool_versions():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "nbstripout", "check-yaml", "check-github-workflows"} <= hooks
    lock = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", (ROOT / "requirements.lock").read_text(),
                           flags=re.M))
    revs = {repo["repo"].rsplit("/", 1)[1]: repo["rev"] for repo in config["repos"]}
    assert revs["ruff-pre-commit"] == f"v{lock['ruff']}"
    assert revs["check-jsonschema"] == lock["check-jsonschema"]
