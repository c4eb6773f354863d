"""The architecture diagrams (docs/diagrams/*.md) name real files of examples/credit-risk.

A diagram is a fenced ```mermaid block plus a one-sentence caption; chapters include it with
`--8<-- "docs/diagrams/<name>.md"`. Its labels name the files that do each step, so a file
that is renamed or moved must make this test fail, not leave a diagram that lies.
"""

import re
from pathlib import Path

import pytest

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "credit-risk"
DIAGRAMS = sorted((ROOT / "docs" / "diagrams").glob("*.md"))
FILE_SUFFIX = re.compile(r"\.(py|ya?ml|sh|json|jsonl|toml|template|md|txt|skops|sig|cfg|ini)$")
# Files the example writes at run time (in the model store, in its log folder), not files of
# the repository; the code that writes each must still name it.
RUNTIME_FILES = {"model.skops", "manifest.json", "model.sig"}
FENCE = re.compile(r"\A```mermaid\n(?P<diagram>.*?)\n```\n(?P<caption>.*)\Z", re.DOTALL)


def named_paths(text: str) -> set[str]:
    """What the text names as a file or folder: a token with a "/" or a file suffix.

    URL paths (a token starting with "/", such as /metrics) and HTML tags are not files.
    """
    text = re.sub(r"<[^>]+>", " ", text)
    tokens = (token.rstrip(".,;:") for token in re.findall(r"[\w./*-]+", text))
    return {token for token in tokens
            if token and not token.startswith("/") and not token.startswith(".")
            and ("/" in token or FILE_SUFFIX.search(token))}


def missing_paths(text: str, root: Path = EXAMPLE) -> list[str]:
    """Named paths that are neither under root nor a run-time file the example's code names."""
    code = "\n".join(path.read_text(encoding="utf-8") for path in root.rglob("*.py")
                     if "tests" not in path.relative_to(root).parts)
    return sorted(path for path in named_paths(text)
                  if not (root / path).exists()
                  and not (path in RUNTIME_FILES and f'"{path}"' in code))


def test_there_are_the_five_diagrams():
    assert {path.stem for path in DIAGRAMS} == {
        "request-path", "artifact-chain", "monitoring-flow", "release-flow", "scaling-topology"}


@pytest.mark.parametrize("diagram", DIAGRAMS, ids=lambda path: path.stem)
def test_diagram_is_one_mermaid_block_and_a_caption(diagram):
    match = FENCE.match(diagram.read_text(encoding="utf-8"))
    assert match, "expected one ```mermaid block first, then the caption"
    assert "```" not in match["caption"]
    caption = " ".join(match["caption"].split())
    assert caption.endswith("."), caption
    assert len(re.findall(r"[.!?](?:\s|$)", caption)) == 1, f"one sentence: {caption}"


@pytest.mark.parametrize("diagram", DIAGRAMS, ids=lambda path: path.stem)
def test_every_file_a_diagram_names_exists(diagram):
    text = diagram.read_text(encoding="utf-8")
    assert named_paths(text), "a diagram of the example names the files that do each step"
    assert missing_paths(text) == []


def test_the_checker_flags_a_planted_bad_name():
    good = (ROOT / "docs" / "diagrams" / "request-path.md").read_text(encoding="utf-8")
    planted = good.replace("credit_risk/middleware/auth.py", "credit_risk/middleware/authz.py")
    assert planted != good
    assert missing_paths(planted) == ["credit_risk/middleware/authz.py"]
    assert missing_paths('flowchart LR\n  a["drift<br/>monitoring/drift_job.py"]') == [
        "monitoring/drift_job.py"]
    assert missing_paths('a["gate"] --> b["deploy.sh"]') == ["deploy.sh"]
    # URL paths, HTML tags and run-time files the code names are not flagged.
    assert missing_paths('a["/metrics<br/>model.skops"]') == []


@pytest.mark.parametrize("diagram", DIAGRAMS, ids=lambda path: path.stem)
def test_every_diagram_is_shown_by_a_chapter(diagram):
    include = f'--8<-- "docs/diagrams/{diagram.name}"'
    pages = [page for page in (ROOT / "docs").rglob("*.md")
             if "diagrams" not in page.parts and include in page.read_text(encoding="utf-8")]
    assert pages, f"no page includes it: add {include} to its chapter"


def middleware_modules_in_order(service_source: str) -> list[str]:
    """The module of each middleware service.py stacks, in the order it adds them."""
    imports = dict(re.findall(r"from credit_risk(?:\.(\w+))? import ([\w, ]+)", service_source))
    added = re.findall(r"add_asgi_middleware\(\s*([\w.]+)", service_source)
    modules = []
    for name in added:
        module, _, _ = name.rpartition(".")
        modules.append(module or next(m for m, names in imports.items() if name in names))
    return modules


def test_the_request_path_lists_the_layers_in_the_order_service_py_adds_them():
    diagram = (ROOT / "docs" / "diagrams" / "request-path.md").read_text()
    shown = [Path(path).stem for path in re.findall(r"<br/>\d+ [^:]+: ([\w/]+\.py)", diagram)]
    stacked = middleware_modules_in_order((EXAMPLE / "service.py").read_text())
    assert shown == stacked, "the diagram's layers differ from service.py's middleware stack"
