"""MkDocs hooks: notebook pages, template downloads, draft mode, chapter openings, Mermaid.

Notebook pages are rendered from executed copies in docs/notebooks/, which git ignores;
readers who click "edit" should land on notebooks/<name>.ipynb instead.

The model-card and runbook templates live once, in handbook/templates/ (the handbook CLI renders
them from there); the build publishes each at templates/<name> so the template pages can
link to it for download.

Draft mode (HANDBOOK_DRAFT=1, set by `make serve`) lets a fresh clone's site come up before
any notebook has run: a notebook without an executed copy is rendered from the clean
notebooks/<name>.ipynb under a note that says so, and a snippet include of a file under
build/ that no notebook has written yet shows a placeholder. The placeholders live in
.cache/draft-snippets/ and only draft builds look there, so a normal (CI) build still fails
on a missing file.

Chapter openings: a practice page's `opening` front matter (build, run, get, tools,
tools_note, files, notebook; tests/test_openings.py checks it) is rendered as the same
"In this chapter" box before its first `##` section. Two figures in it are computed, not typed:
- reading time: the page's prose words (fenced code, includes and the collapsed blocks' titles,
  comments and link targets left out: code is skimmed, not read) at 200 words a minute,
  rounded up;
- run time: the notebook's test case time in build/notebooks/<notebook>.xml, the JUnit report
  the Makefile's notebook rule writes on each tested run. Without that report the box says how
  to produce it instead of failing the build: CI runs `make test` (which executes them) before
  building, so the published site has the figure, and a local copy executed before the rule
  wrote reports needs none to build (delete it and `make notebooks` measures it).

Mermaid: Material renders ```mermaid blocks with `window.mermaid` when it exists and fetches
the library from unpkg.com otherwise; this hook adds the vendored copy to the pages that have
a diagram (and only those: it is 3.5 MB). mkdocs-jupyter's notebook template carries its own
Mermaid loader that imports from cdnjs; it is removed from the notebook pages.
"""

import math
import os
import posixpath
import re
from pathlib import Path
from xml.etree import ElementTree

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, InclusionLevel
from mkdocs.utils import get_relative_url

ROOT = Path(__file__).resolve().parents[1]
DRAFT_SNIPPETS = ROOT / ".cache" / "draft-snippets"
MERMAID_JS = "assets/vendor/mermaid/mermaid.min.js"
NOTEBOOK_REPORTS = ROOT / "build" / "notebooks"
OPENING_FIELDS = ("build", "run", "get", "tools", "files", "notebook")
WORDS_PER_MINUTE = 200
NOT_PROSE = re.compile(r"^([ \t]*)(`{3,}|~{3,}).*?^\1\2[ \t]*$|<!--.*?-->|^[^\n]*--8<--[^\n]*$"
                       r"|^\?{3}[^\n]*$|\]\([^)]*\)", re.M | re.S)
# Not pages or assets of their own: axe-core is injected by tests/test_browser.py only, and
# the diagrams reach the site through the chapters that include them (`--8<--`).
NOT_PUBLISHED = ("assets/vendor/axe-core/", "diagrams/")
BUILD_INCLUDE = re.compile(r"""--8<--\s+["']?(build/[^"'\s:]+)""")
TASK_CHECKBOX = re.compile(
    r'<label class="task-list-control"><input(?P<rest> type="checkbox" disabled'
    r'(?P<checked> checked)?\s*/?>)')
JUPYTER_MERMAID = re.compile(
    r"<script type=\"module\">\s*document\.addEventListener\(\"DOMContentLoaded\", async \(\) => \{"
    r"\s*const diagrams = document\.querySelectorAll\(\"\.jp-Mermaid.*?"
    r"<!-- End of mermaid configuration -->",
    re.DOTALL,
)


def draft_mode() -> bool:
    return os.environ.get("HANDBOOK_DRAFT") == "1"


def missing_build_includes(docs_dir: Path) -> list[str]:
    """Paths under build/ that pages include but that no notebook has written yet."""
    paths = {match for page in docs_dir.rglob("*.md") if "assets" not in page.parts
             for match in BUILD_INCLUDE.findall(page.read_text(encoding="utf-8"))}
    return sorted(path for path in paths if not (ROOT / path).exists())


def on_config(config):
    if not draft_mode():
        return config
    missing = missing_build_includes(Path(config.docs_dir))
    for path in missing:
        placeholder = DRAFT_SNIPPETS / path
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        placeholder.write_text(
            f"Draft: `{path}` is written when this chapter's notebook runs "
            "(`make notebooks`; `make serve` runs them in the background).\n",
            encoding="utf-8",
        )
    snippets = config.mdx_configs.setdefault("pymdownx.snippets", {})
    base_path = snippets.get("base_path", ["."])
    base_path = [base_path] if isinstance(base_path, str) else list(base_path)
    snippets["base_path"] = [*base_path, str(DRAFT_SNIPPETS)]
    return config


# Before mkdocs-jupyter's on_files, so it wraps the draft notebooks added here as pages.
@event_priority(50)
def on_files(files, config):
    # MkDocs leaves every docs/templates/ file out of the site by default (a folder themes
    # used to keep their templates in); here it holds the template pages, so keep them.
    for file in files:
        if file.src_uri.startswith("templates/"):
            file.inclusion = InclusionLevel.INCLUDED
        if file.src_uri.startswith(NOT_PUBLISHED):
            file.inclusion = InclusionLevel.EXCLUDED
    templates = ROOT / "handbook" / "templates"
    for template in sorted(templates.glob("*.jinja")):
        files.append(File.generated(config, f"templates/{template.name}",
                                    abs_src_path=str(template),
                                    inclusion=InclusionLevel.INCLUDED))
    if draft_mode():
        for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
            uri = f"notebooks/{notebook.name}"
            if files.get_file_from_path(uri) is None:
                # A plain File rooted at the repository (not File.generated): mkdocs-jupyter
                # wraps pages in a class that finds the source through src_dir.
                files.append(File(uri, str(ROOT), config.site_dir, config.use_directory_urls,
                                  inclusion=InclusionLevel.INCLUDED))
    return files


def is_draft_notebook(page) -> bool:
    return (draft_mode() and page.file.src_uri.startswith("notebooks/")
            and page.file.abs_src_path == str(ROOT / page.file.src_uri))


def label_task_checkboxes(html: str) -> str:
    """pymdownx.tasklist draws a checkbox with no accessible name; say what its state means."""
    return TASK_CHECKBOX.sub(
        lambda m: (f'<label class="task-list-control"><input aria-label='
                   f'"{"done" if m["checked"] else "not done"}"{m["rest"]}'),
        html)


def reading_minutes(markdown: str) -> int:
    words = re.findall(r"\w+(?:['’-]\w+)*", NOT_PROSE.sub(" ", markdown))
    return math.ceil(len(words) / WORDS_PER_MINUTE)


def run_time(notebook: str) -> str:
    """How long the notebook's last tested run took, from the report `make notebooks` writes."""
    report = NOTEBOOK_REPORTS / f"{notebook}.xml"
    if not report.exists():
        return (f"the notebook's run time shows here once `make notebooks` has run it "
                f"(it writes `build/notebooks/{notebook}.xml`)")
    cases = list(ElementTree.parse(report).iter("testcase"))
    if not cases or any(len(case) for case in cases):  # a failure, error or skip element
        return f"its last run did not pass (`build/notebooks/{notebook}.xml`)"
    minutes, seconds = divmod(round(sum(float(case.get("time")) for case in cases)), 60)
    took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    return f"the notebook took {took} in its last tested run"


def opening_block(page, markdown: str) -> str:
    """The "In this chapter" box, in Markdown, from the page's `opening` front matter."""
    opening = page.meta["opening"]
    missing = [field for field in OPENING_FIELDS if field not in opening]
    if missing:
        raise PluginError(f"{page.file.src_uri}: `opening` front matter lacks {missing}")
    notebook = opening["notebook"]
    link = posixpath.relpath(f"notebooks/{notebook}.ipynb", posixpath.dirname(page.file.src_uri))
    tools = (", ".join(f"`{tool}`" for tool in opening["tools"])
             or "none beyond Python and the packages in `.venv/`")
    if opening.get("tools_note"):
        tools += f"; {opening['tools_note']}"
    files = ", ".join(f"`{path}`" for path in opening["files"])
    lines = [
        f"**You build:** {opening['build']}",
        f"**You run:** [the {notebook} notebook]({link}): {opening['run']}",
        f"**You get:** {opening['get']}",
        f"**Time:** about {reading_minutes(markdown)} min to read; {run_time(notebook)}",
        f"**Tools:** {tools}",
        f"**Files:** {files}",
    ]
    return ('!!! abstract "In this chapter"\n\n'
            + "".join(f"    - {line}\n" for line in lines) + "\n")


def on_page_markdown(markdown, page, config, files):
    if "opening" not in page.meta:
        return markdown
    first_section = re.search(r"^## ", markdown, re.M)
    at = first_section.start() if first_section else len(markdown)
    return markdown[:at] + opening_block(page, markdown) + markdown[at:]


def on_page_content(html, page, config, files):
    html = label_task_checkboxes(html)
    if page.file.src_uri.endswith(".ipynb"):
        html = JUPYTER_MERMAID.sub("", html)
    if is_draft_notebook(page):
        html = draft_note(page, files) + html
    return html


def draft_note(page, files) -> str:
    name = Path(page.file.src_uri).stem
    chapter = files.get_file_from_path(f"practices/{name}.md")
    chapter = chapter or files.get_file_from_path("getting-started.md")
    start = files.get_file_from_path("start.md")
    tools = (f'<a href="{get_relative_url(chapter.url, page.url)}">its chapter</a>'
             if chapter else "its chapter")
    table = (f' (the table on <a href="{get_relative_url(start.url, page.url)}">Start here</a>'
             " lists them)" if start else "")
    return (
        '<div class="admonition warning handbook-draft-note">'
        '<p class="admonition-title">Draft: this notebook shows no outputs yet</p>'
        f"<p>This page renders <code>notebooks/{name}.ipynb</code> as committed, without "
        "running it. Run <code>make notebooks</code> to execute it and show its outputs here "
        "(<code>make serve</code> does that in the background and the page fills in when the "
        f"run finishes). The notebook needs the tools {tools} names{table}.</p></div>\n"
    )


def on_page_context(context, page, config, nav):
    if page.file.src_uri.startswith("notebooks/") and config.repo_url:
        page.edit_url = f"{config.repo_url.rstrip('/')}/edit/main/{page.file.src_uri}"
    return context


def on_post_page(output, page, config):
    if 'class="mermaid"' in output:
        script = f'<script src="{get_relative_url(MERMAID_JS, page.url)}"></script>'
        output = output.replace("</body>", f"{script}\n</body>", 1)
    return output
