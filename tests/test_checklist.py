"""The checklist, the FAQ and the readiness command link only to what exists: pages and their
headings, files in the repository, and the tests they name. The checklist covers the seven
practices and the 28 ML Test Score tests, each item with a test or a plain "not yet"."""

import ast
import re
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from conftest import ROOT

sys.path.insert(0, str(ROOT))  # the handbook package lives at the repository root
from handbook import readiness  # noqa: E402

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
    from templates/ (overrides/hooks.py publishes them), everything else from docs/."""
    if not target.resolve().is_relative_to(DOCS.resolve()):
        return target
    relative = target.resolve().relative_to(DOCS.resolve())
    if relative.parts[0] == "notebooks":
        return ROOT / "notebooks" / relative.name
    if relative.parts[0] == "templates" and relative.suffix == ".jinja":
        return ROOT / "templates" / relative.name
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


def test_the_checklist_has_the_28_ml_test_score_items():
    text = CHECKLIST.read_text()
    areas = sections(sections(text, 2)["The ML Test Score"], 3)
    assert list(areas) == list(ML_TEST_SCORE)
    for area, prefix in ML_TEST_SCORE.items():
        rows = table_rows(areas[area])
        assert [row[0] for row in rows] == [f"{prefix}{n}" for n in range(1, 8)], area
        assert [problem for row in rows for problem in check_item(row)] == []


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
