"""Every practice chapter opens the same way, from facts that are checked.

Each docs/practices/*.md page carries `opening` front matter: overrides/hooks.py renders it as
the page's "In this chapter" box, docs_macros.py as the page's row of the tools table on
docs/start.md. The facts must be complete, every file named must exist, every tool must be
one the Makefile's system-deps step installs, and the start page must render its chapter rows
from those facts, so the two can never disagree.
"""

import importlib.util
import re
import sys

import pytest
import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT))  # docs_macros.py lives at the repository root
import docs_macros  # noqa: E402

spec = importlib.util.spec_from_file_location("hooks", ROOT / "overrides" / "hooks.py")
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)

NAV = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)["nav"]
PRACTICES = docs_macros.practice_pages(NAV)


def known_tools() -> set[str]:
    """The commands in the Makefile's SYSTEM_DEPS (command:package pairs)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    deps = re.search(r"^SYSTEM_DEPS := ((?:.*\\\n)*.*)$", makefile, re.M)[1]
    return {dep.split(":")[0].replace("$(CHROMIUM)", "chromium")
            for dep in deps.replace("\\\n", " ").split()}


def problems(facts: dict) -> list[str]:
    """What is missing or untrue in one page's `opening` front matter."""
    found = [f"no {field}" for field in hooks.OPENING_FIELDS if not facts.get(field)
             and not (field == "tools" and facts.get(field) == [])]
    if facts.get("notebook") and not (ROOT / "notebooks" / f"{facts['notebook']}.ipynb").exists():
        found.append(f"no notebooks/{facts['notebook']}.ipynb")
    found += [f"no file {path}" for path in facts.get("files") or [] if not (ROOT / path).exists()]
    found += [f"unknown tool {tool}" for tool in facts.get("tools") or []
              if tool not in known_tools()]
    return found


def test_every_practice_chapter_is_in_the_nav():
    """The seven practices, and Batch and autoscaling, which takes Scalability past one
    server."""
    assert sorted(PRACTICES.values()) == sorted(
        f"practices/{path.name}" for path in (ROOT / "docs" / "practices").glob("*.md"))


@pytest.mark.parametrize("page", PRACTICES.values())
def test_opening_is_complete_and_true(page):
    assert problems(docs_macros.opening(page)) == []


def test_the_check_catches_a_missing_field_and_a_missing_file():
    facts = dict(docs_macros.opening("practices/containerization.md"))
    del facts["get"]
    facts["files"] = [*facts["files"], "examples/credit-risk/no_such_file.py"]
    facts["tools"] = [*facts["tools"], "docker"]
    assert problems(facts) == [
        "no get", "no file examples/credit-risk/no_such_file.py", "unknown tool docker"]


def test_the_start_page_renders_each_chapters_tools():
    text = (ROOT / "docs" / "start.md").read_text(encoding="utf-8")
    assert "{{ chapter_tool_rows() }}" in text
    assert not re.search(r"^\| \[[^]]*\]\(practices/", text, re.M), "a chapter row typed by hand"
    header = next(line for line in text.splitlines() if line.startswith("| chapter"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    for title, page in PRACTICES.items():
        row = dict(zip(columns, (cell.strip() for cell in
                                 docs_macros.tool_row(title, page).strip("|").split("|")),
                       strict=True))
        shown = {tool for tool, heading in docs_macros.TOOL_COLUMNS.items()
                 if row[heading] == "yes"} | set(re.findall(r"`([^`]+)`", row["also"]))
        tools = set(docs_macros.opening(page)["tools"])
        assert shown == tools, page
        assert (row["none"] == "yes") == (not tools), page


def test_reading_and_run_time_are_computed(tmp_path, monkeypatch):
    prose = "word " * 201
    assert hooks.reading_minutes(prose) == 2
    assert hooks.reading_minutes(prose + "\n```python\n" + "code " * 500 + "\n```\n") == 2
    monkeypatch.setattr(hooks, "NOTEBOOK_REPORTS", tmp_path)
    assert "`make notebooks`" in hooks.run_time("demo")
    report = tmp_path / "demo.xml"
    report.write_text('<testsuites><testsuite><testcase name="demo.ipynb" time="83.4"/>'
                      "</testsuite></testsuites>")
    assert hooks.run_time("demo") == "the notebook took 1 min 23 s in its last tested run"
    report.write_text('<testsuites><testsuite><testcase name="demo.ipynb" time="9.0">'
                      "<failure/></testcase></testsuite></testsuites>")
    assert "did not pass" in hooks.run_time("demo")
