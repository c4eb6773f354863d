"""Every fenced code block on the site is tested, or says why it is not (issue 14).

A block in docs/**/*.md (the generated notebook copies aside) passes when
- its body is only `--8<--` includes of files under a root a test covers (INCLUDED_ROOTS);
- it is a ```mermaid diagram in docs/diagrams/, whose labels tests/test_diagrams.py checks;
- its fence is marked as output: ```text title="output" (any title starting with "output");
- the line before it is `<!-- tested: tests/<file>.py[::<test>] <what the test does> -->`,
  naming a test file that exists, refers to the page, and holds the named test; blocks that
  name this file are run or compared below;
- the line before it is `<!-- untested: <reason> -->`.
"""

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT

DOCS = ROOT / "docs"
HERE = "tests/test_code_blocks.py"
# Pages with blocks this file runs or compares: getting-started.md, index.md,
# configuration.md, practices/containerization.md.
# What tests the files a block may include.
INCLUDED_ROOTS = {
    "examples/": "tests/test_examples.py",       # each example's own tests, in a copy
    "handbook/": "tests/test_templates.py",      # and tests/test_handbook_cli.py
    ".github/workflows/": "tests/test_workflows.py",
    ".pre-commit-config.yaml": "tests/test_workflows.py",
    "build/": "tests/test_notebooks.py",         # written by the notebooks CI executes
}

OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARK = re.compile(r"^\s*<!--\s*(?P<kind>tested|untested):\s*(?P<text>.*?)\s*-->\s*$")
TESTED = re.compile(r"^(?P<file>tests/[\w/]+\.py)(?:::(?P<test>\w+))?\s+\S")
INCLUDE = re.compile(r"""^--8<--\s+["'](?P<path>[^"':]+)""")


@dataclass
class Block:
    line: int
    language: str
    info: str
    body: str
    mark: re.Match | None


def blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    found, number = [], 0
    while number < len(lines):
        opening = OPEN.match(lines[number])
        if not opening:
            number += 1
            continue
        fence, end = opening["fence"], number + 1
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        info = opening["info"].strip()
        mark = MARK.match(lines[number - 1]) if number else None
        found.append(Block(number + 1, (info.split() or [""])[0], info,
                           "\n".join(line.strip() for line in lines[number + 1:end]), mark))
        number = end + 1
    return found


def problem(page: str, block: Block) -> str | None:
    """Why the block is neither tested nor marked, or None."""
    where = f"docs/{page}:{block.line}"
    body = [line for line in block.body.splitlines() if line]
    if body and all(line.startswith("--8<--") for line in body):
        for line in body:
            path = INCLUDE.match(line)["path"]
            if not path.startswith(tuple(INCLUDED_ROOTS)):
                return f"{where}: includes {path}, which no test covers (INCLUDED_ROOTS)"
        return None
    if block.language == "mermaid":
        return None if page.startswith("diagrams/") else (
            f"{where}: a diagram outside docs/diagrams/, where tests/test_diagrams.py checks it")
    if re.search(r'title="output', block.info):
        return None
    if block.mark is None:
        return (f"{where}: a ```{block.language} block that no test runs: include it from a "
                "tested file, test it, or mark it <!-- untested: <reason> -->")
    if block.mark["kind"] == "untested":
        return None if len(block.mark["text"].split()) >= 3 else f"{where}: say why"
    tested = TESTED.match(block.mark["text"])
    if not tested:
        return f"{where}: write <!-- tested: tests/<file>.py[::<test>] <what it does> -->"
    test_file = ROOT / tested["file"]
    if not test_file.is_file():
        return f"{where}: {tested['file']} does not exist"
    source = test_file.read_text(encoding="utf-8")
    if Path(page).name not in source:
        return f"{where}: {tested['file']} never refers to {page}"
    if tested["test"] and f"def {tested['test']}(" not in source:
        return f"{where}: {tested['file']} has no test {tested['test']}"
    return None


def pages() -> list[str]:
    return sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")
                  if not {"notebooks", "assets"} & set(path.relative_to(DOCS).parts))


def page_blocks(page: str) -> list[Block]:
    return blocks((DOCS / page).read_text(encoding="utf-8"))


def blocks_tested_here(test: str | None = None) -> list[tuple[str, Block]]:
    return [(page, block) for page in pages() for block in page_blocks(page)
            if block.mark and block.mark["kind"] == "tested"
            and (match := TESTED.match(block.mark["text"]))
            and match["file"] == HERE and match["test"] == test]


@pytest.mark.parametrize("page", pages())
def test_every_block_is_tested_or_marked(page):
    problems = [p for block in page_blocks(page) if (p := problem(page, block))]
    assert not problems, "\n".join(problems)


def test_every_included_root_names_an_existing_test():
    for test_file in INCLUDED_ROOTS.values():
        assert (ROOT / test_file).is_file(), test_file


PLANTED = """Some prose.

```bash
rm -rf build/
```

<!-- untested: -->
```python
print("no reason given")
```

<!-- tested: tests/test_no_such_file.py runs it -->
```bash
make everything
```

```python title="x.py"
--8<-- "secrets/x.py"
```

```text title="output"
fine: output
```
"""


def test_planted_unmarked_blocks_fail():
    found = [problem("planted.md", block) for block in blocks(PLANTED)]
    assert [p is not None for p in found] == [True, True, True, True, False], found


@pytest.mark.parametrize(("page", "block"), blocks_tested_here(),
                         ids=lambda value: getattr(value, "line", value))
def test_shell_block_runs_in_a_throwaway_home(page, block, tmp_path):
    """Blocks that only copy an example out of the repository: run them with HOME elsewhere."""
    assert block.language == "bash", f"docs/{page}:{block.line}: only shell blocks run here"
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.body], cwd=ROOT,
                            env={**os.environ, "HOME": str(home)}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    copied = [path for path in home.iterdir() if (path / "service.py").is_file()]
    assert copied, f"docs/{page}:{block.line} copied no example into HOME"


def test_the_settings_error_shown_is_the_one_the_service_prints():
    # docs/configuration.md shows what `bentoml serve` prints for a bad setting.
    [(_, block)] = blocks_tested_here("test_the_settings_error_shown_is_the_one_the_service_prints")
    example = ROOT / "examples" / "credit-risk"
    script = ("from credit_risk.settings import Settings, SettingsError\n"
              "try:\n    Settings.from_env({'CREDIT_RISK_MICRO_BATCH_SIZE': 'abc'})\n"
              "except SettingsError as error:\n"
              "    print(f'credit-risk service not started: {error}')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=example, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(example)})
    assert result.returncode == 0, result.stderr
    assert block.body == result.stdout.strip()


def test_podman_run_uses_the_flags_the_container_test_uses():
    # docs/practices/containerization.md shows `podman run` by hand; tests/system/
    # test_container.py starts the image through ops/podman.py with RUN_OPTIONS.
    [(_, block)] = blocks_tested_here("test_podman_run_uses_the_flags_the_container_test_uses")
    podman = (ROOT / "examples/credit-risk/ops/podman.py").read_text(encoding="utf-8")
    options = re.search(r"RUN_OPTIONS = \[(.*?)\]", podman, re.S)[1]
    command = " ".join(block.body.replace("\\\n", " ").split())
    for option in re.findall(r'"([^"]+)"', options):
        assert option in command, f"podman run in the chapter lacks {option}"
    container_test = (ROOT / "examples/credit-risk/tests/system/test_container.py").read_text()
    assert '"/run/secrets/credit-risk"' in container_test
    assert ('--volume "$PWD/secrets:/run/secrets/credit-risk:ro"' in command
            and "--env CREDIT_RISK_API_KEYS_FILE=/run/secrets/credit-risk/api-keys.jsonl"
            in command), "the keys file must reach the container read-only, as in the test"
    assert re.search(r"--publish 127\.0\.0\.1:\d+:3000 ", command), "publish on loopback only"
    assert "chmod 755 secrets" in command and "chmod 644 secrets/api-keys.jsonl" in command


def test_the_docker_commands_are_the_ones_the_container_test_runs():
    # docs/practices/containerization.md's Docker tabs; tests/system/test_container.py runs
    # DOCKER_CONTAINERIZE and DOCKER_RUN (with --detach and a name, to stop it afterwards).
    found = blocks_tested_here("test_the_docker_commands_are_the_ones_the_container_test_runs")
    shown = [" ".join(block.body.replace("\\\n", " ").split()) for _, block in found]
    source = (ROOT / "examples/credit-risk/tests/system/test_container.py").read_text()
    containerize = re.search(r'DOCKER_CONTAINERIZE = "(.*?)"', source)[1]
    run = "".join(re.findall(r'"(.*?)"', re.search(r"DOCKER_RUN = \((.*?)\)\n", source, re.S)[1]))
    image = "credit_risk_service:dev"
    expected = [containerize.format(bento="credit_risk_service:latest", image=image),
                run.replace(" --detach --name {name}", "").format(
                    volume='"$PWD/secrets:/run/secrets/credit-risk:ro"', port=3000, image=image)]
    assert len(shown) == 2
    for command, block in zip(expected, shown, strict=True):
        assert command in block, f"the chapter shows\n{block}\nthe test runs\n{command}"
