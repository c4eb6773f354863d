"""The checklist, the FAQ and the readiness command link only to what exists: pages and their
headings, files in the repository, and the tests they name. The checklist covers the seven
practices, each item with a test or a plain "not yet", and the 28 ML Test Score tests, whose
tables and scores are generated from docs/checklist/ml-test-score.yaml (handbook/checklist.py):
the page must be what the data renders, the scores what the verdicts add up to, and every
linked test must exist and, after `make test`, have run."""

import ast
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from conftest import ROOT

sys.path.insert(0, str(ROOT))  # the handbook package lives at the repository root
from handbook import checklist, readiness  # noqa: E402

DOCS = ROOT / "docs"
CHECKLIST = DOCS / "checklist.md"
FAQ = DOCS / "faq.md"
# The pages of the documentation chapter: their links are checked the same way.
PAGES = [CHECKLIST, FAQ, DOCS / "cli.md", DOCS / "practices" / "documentation.md",
         DOCS / "templates" / "model-card.md", DOCS / "templates" / "runbook.md"]
REPO_BLOB = "https://github.com/deployment-handbook/handbook/blob/main/"
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$")
TEST_NAME = re.compile(r"^`([\w.]+)::(\w+)`$")
PRACTICES = ["Containerization", "Version control", "Monitoring", "Scalability", "Security",
             "Automated deployment", "Documentation"]
ML_TEST_SCORE = {"Data and features": "D", "Model development": "M", "Infrastructure": "I",
                 "Monitoring": "Mo"}
# The 2017 paper's points; `partial` earns the manual half point only with documented results.
POINTS = {"automated": 1.0, "manual": 0.5, "none": 0.0}
NOT_YET = "Not demonstrated"


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of each Markdown heading outside fenced code."""
    found, in_code = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        elif not in_code and (match := HEADING.match(line)):
            found.append((len(match[1]), match[2]))
    return found


def anchors(page: Path) -> set[str]:
    """The ids mkdocs gives the page's headings: Python-Markdown's toc slugs, with `_1`,
    `_2`... for repeats."""
    ids: set[str] = set()
    for _, title in headings(page.read_text()):
        text = LINK.sub(r"\1", title).replace("`", "")
        slug = base = slugify(text, "-")
        count = 0
        while slug in ids:
            count += 1
            slug = f"{base}_{count}"
        ids.add(slug)
    return ids


def source_of(target: Path) -> Path:
    """Where a built-site file comes from: executed notebooks from notebooks/, templates
    from handbook/templates/ (overrides/hooks.py publishes them), everything else from docs/."""
    if not target.resolve().is_relative_to(DOCS.resolve()):
        return target
    relative = target.resolve().relative_to(DOCS.resolve())
    if relative.parts[0] == "notebooks":
        return ROOT / "notebooks" / relative.name
    if relative.parts[0] == "templates" and relative.suffix == ".jinja":
        return ROOT / "handbook" / "templates" / relative.name
    return target


def problem_with_page_link(page: Path, url: str) -> str | None:
    path, _, anchor = url.partition("#")
    target = source_of(page.parent / path) if path else page
    if not target.is_file():
        return f"{url}: no {target.relative_to(ROOT)}"
    if anchor and anchor not in anchors(target):
        return f"{url}: {target.relative_to(ROOT)} has no heading with the anchor #{anchor}"
    return None


def defined_functions(path: Path) -> set[str]:
    return {node.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def problem_with_repo_link(text: str, url: str) -> str | None:
    path = ROOT / url.removeprefix(REPO_BLOB).split("#")[0]
    if not path.exists():
        return f"{url}: no {path.relative_to(ROOT)} in the repository"
    if test := TEST_NAME.match(text):
        file, function = test.groups()
        if file != path.name:
            return f"{text} links to {path.relative_to(ROOT)}"
        if function not in defined_functions(path):
            return f"{text}: no function {function} in {path.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_every_link_resolves(page):
    problems, checked = [], 0
    for text, url in LINK.findall(page.read_text()):
        if url.startswith(REPO_BLOB):
            problems.append(problem_with_repo_link(text, url))
        elif not re.match(r"[a-z]+:", url):  # a page of this site (not http:, mailto:...)
            problems.append(problem_with_page_link(page, url))
        else:
            continue
        checked += 1
    assert checked > 0
    assert [problem for problem in problems if problem] == []


def test_the_link_checker_itself_catches_a_wrong_anchor_test_and_file():
    assert problem_with_page_link(CHECKLIST, "practices/monitoring.md#the-tests") is None
    assert "no heading" in problem_with_page_link(CHECKLIST, "practices/monitoring.md#nope")
    assert "no docs/nowhere.md" in problem_with_page_link(CHECKLIST, "nowhere.md")
    assert problem_with_page_link(CHECKLIST, "#monitoring_1") is None, "a repeated heading"
    tests = f"{REPO_BLOB}tests/test_lock.py"
    assert problem_with_repo_link("`test_lock.py::test_lock_pins_every_package`", tests) is None
    assert "no function" in problem_with_repo_link("`test_lock.py::test_nothing`", tests)
    assert "no tests/test_nothing.py" in problem_with_repo_link(
        "`test_nothing.py::test_x`", f"{REPO_BLOB}tests/test_nothing.py")


def table_rows(text: str) -> list[list[str]]:
    """Body rows of the Markdown tables in text, as cells (the header and --- rows dropped)."""
    rows, previous = [], ""
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line) \
                and previous.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        previous = line
    return [row for row in rows if not re.fullmatch(r"-+", row[0])]


def sections(text: str, level: int) -> dict[str, str]:
    """Text under each heading of the level, up to the next heading of that level or higher."""
    parts = re.split(rf"^({'#' * level} .+)$", text, flags=re.M)
    found = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        higher = rf"^#{{1,{level - 1}}} "
        found[heading.removeprefix("#" * level + " ")] = re.split(higher, body, flags=re.M)[0]
    return found


def check_item(row: list[str]) -> list[str]:
    """What an item lacks: a link to a chapter, and a test link or a plain 'not yet'."""
    item = " | ".join(row)
    problems = []
    if not any(not re.match(r"[a-z]+:", url) for _, url in LINK.findall(row[-2])):
        problems.append(f"no chapter link: {item}")
    tests = [text for text, url in LINK.findall(row[-1]) if TEST_NAME.match(text)]
    if not tests and not row[-1].startswith(NOT_YET):
        problems.append(f"neither a test nor '{NOT_YET} yet': {item}")
    return problems


def test_the_checklist_covers_the_seven_practices_with_a_test_or_a_plain_no():
    text = CHECKLIST.read_text()
    practices = sections(sections(text, 2)["The seven practices"], 3)
    assert list(practices) == PRACTICES
    for practice, body in practices.items():
        rows = table_rows(body)
        assert len(rows) >= 3, f"{practice}: {len(rows)} items"
        assert [problem for row in rows for problem in check_item(row)] == []


def test_the_ml_test_score_data_has_the_28_items_and_every_linked_test_exists():
    items = checklist.load()
    assert [item.id for item in items] == [f"{prefix}{n}" for prefix in ML_TEST_SCORE.values()
                                           for n in range(1, 8)]
    assert checklist.problems(items) == []


def test_the_page_is_what_the_data_renders():
    text = CHECKLIST.read_text()
    assert checklist.page_with(text, checklist.render(checklist.load())) == text, (
        "regenerate with: python -m handbook.checklist render")
    areas = sections(sections(text, 2)["The ML Test Score"], 3)
    assert list(areas) == list(ML_TEST_SCORE)
    for area, prefix in ML_TEST_SCORE.items():
        assert [row[0] for row in table_rows(areas[area])] == [f"{prefix}{n}" for n in range(1, 8)]


def points(verdict: str, documented: str | None) -> float:
    if verdict == "partial":
        return 0.5 if documented else 0.0
    return POINTS[verdict]


def test_the_scores_on_the_page_add_up_from_the_verdicts_on_the_page():
    """Recomputed from the rows as the page shows them, not from the renderer's arithmetic."""
    text = CHECKLIST.read_text()
    part = sections(text, 2)["The ML Test Score"]
    areas = sections(part, 3)
    expected = {}
    for area in ML_TEST_SCORE:
        rows = table_rows(areas[area])
        for row in rows:
            verdict, shown = row[3], row[5]
            assert float(row[4]) == points(verdict, "results written down" in shown), row[0]
        expected[area] = sum(float(row[4]) for row in rows)
    summary = {row[0]: float(row[-1]) for row in table_rows(part.split("### ", 1)[0])}
    assert summary == expected
    overall = re.search(r"\*\*ML Test Score: ([\d.]+)\*\*", part)
    assert float(overall[1]) == min(expected.values())


def test_the_checker_refuses_a_planted_bad_entry():
    good = checklist.load()[0]
    test_file = "examples/credit-risk/tests/unit/test_validation.py"
    planted = {
        "no function": replace(good, tests=[f"{test_file}::test_that_was_never_written"]),
        "no file": replace(good, tests=["examples/credit-risk/tests/unit/test_gone.py::test_x"]),
        "no function name": replace(good, tests=[test_file]),
        "automated without a test": replace(good, tests=[]),
        "none with a test": replace(good, verdict="none"),
        "manual without results": replace(good, verdict="manual", tests=[]),
        "unknown verdict": replace(good, verdict="mostly"),
    }
    assert checklist.item_problems(good) == []
    for fault, item in planted.items():
        assert checklist.item_problems(item), fault
    assert "defines no function test_that_was_never_written" in \
        checklist.item_problems(planted["no function"])[0]
    assert checklist.problems(checklist.load()[1:]), "a missing item"


def test_partial_earns_half_a_point_only_with_documented_results():
    good = checklist.load()[0]
    assert replace(good, verdict="partial").points == 0.0
    assert replace(good, verdict="partial", documented="docs/benchmarks.md").points == 0.5
    assert replace(good, verdict="manual", documented="docs/benchmarks.md").points == 0.5
    items = [replace(item, verdict="automated") for item in checklist.load()]
    items[0] = replace(items[0], verdict="none", tests=[])
    assert checklist.scores(items) == ({"Data and features": 6.0, "Model development": 7.0,
                                        "Infrastructure": 7.0, "Monitoring": 7.0}, 6.0)


def test_every_linked_test_ran_in_the_last_test_run():
    """Reads build/junit/handbook*.xml (the repository's tests/) and
    build/junit/credit-risk*.xml (the flagship's tests, run from a copy of its folder), so it
    must run after the runs that write them (see handbook/checklist.py)."""
    needed = sorted({checklist.junit_file(reference) for item in checklist.load()
                     for reference in item.tests})
    missing = [pattern for pattern in needed if not any(checklist.JUNIT_DIR.glob(pattern))]
    if missing:
        reason = (f"no JUnit XML matching {', '.join(missing)} in "
                  f"{checklist.JUNIT_DIR.relative_to(ROOT)}/ (written by `make test`); "
                  "cannot tell whether the linked tests ran")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert checklist.junit_problems(checklist.load()) == []


def test_the_junit_check_catches_tests_not_run(tmp_path):
    (tmp_path / "credit-risk-readme.xml").write_text("""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.unit.test_validation" name="test_ran"/>
<testcase classname="tests.unit.test_validation" name="test_skipped"><skipped/></testcase>
<testcase classname="tests.unit.test_validation" name="test_failed"><failure/></testcase>
<testcase classname="examples.credit-risk.tests.unit.test_validation" name="test_p[a]"/>
<testcase classname="examples.credit-risk.tests.unit.test_validation" name="test_p[b]">
<skipped/></testcase>
</testsuite></testsuites>""")
    (tmp_path / "credit-risk-slow.xml").write_text(
        '<testsuites><testsuite><testcase classname="tests.unit.test_validation" '
        'name="test_slow"/></testsuite></testsuites>')
    path = "examples/credit-risk/tests/unit/test_validation.py"
    item = replace(checklist.load()[0], tests=[f"{path}::{name}" for name in (
        "test_ran", "test_skipped", "test_failed", "test_p", "test_slow", "test_absent")])
    assert checklist.junit_problems([item], tmp_path) == [
        f"D1: {path}::test_skipped was skipped in credit-risk*.xml",
        f"D1: {path}::test_failed failed in credit-risk*.xml",
        f"D1: {path}::test_absent was not collected in credit-risk*.xml",
    ]


def test_every_faq_answer_links_to_code_you_can_run():
    questions = sections(FAQ.read_text(), 2)
    assert len(questions) >= 9
    for question, answer in questions.items():
        urls = [url for _, url in LINK.findall(answer)]
        runnable = [url for url in urls if url.endswith(".ipynb") or url.startswith(REPO_BLOB)]
        assert runnable, f"'{question}' links to no notebook or example code"


def test_every_readiness_check_links_to_an_existing_page_and_heading():
    for check in readiness.CHECKS:
        assert check.url.endswith(f"/docs/{check.chapter}")
        assert problem_with_page_link(DOCS / "index.md", check.chapter) is None, check.key
