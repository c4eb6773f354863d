"""`make serve` runs `mkdocs serve`; the dev server must come up and show the executed notebook.

On a fresh clone nothing is executed yet: `make serve` then serves in draft mode
(HANDBOOK_DRAFT=1) at once, and pages fill in as the notebooks run in the background.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import BIN, ROOT, free_port, start_server, stop

# What a fresh clone does not have: environments, caches, executed notebooks, build outputs.
NOT_IN_A_FRESH_CLONE = {".venv", ".git", "site", ".cache", "__pycache__", ".pytest_cache",
                        ".ruff_cache"}


@pytest.mark.timeout(180)
def test_dev_server_serves_the_executed_notebook():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(
        [BIN / "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{port}", "--livereload"],
        f"{url}/", cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        page = httpx.get(f"{url}/notebooks/quickstart/", timeout=10)
        assert page.status_code == 200
        assert "jp-OutputArea-output" in page.text
        assert "livereload" in page.text
    finally:
        stop(server)


def fresh_clone(destination: Path) -> Path:
    """The repository as a fresh clone has it: no docs/notebooks/, no build/."""
    shutil.copytree(ROOT, destination, ignore=lambda folder, names: [
        name for name in names
        if name in NOT_IN_A_FRESH_CLONE
        or (Path(folder) == ROOT and name == "build")
        or (Path(folder) == ROOT / "docs" and name == "notebooks")])
    return destination


@pytest.mark.timeout(180)
def test_fresh_clone_serves_drafts_at_once(tmp_path):
    repo = fresh_clone(tmp_path / "repo")
    assert not (repo / "build").exists() and not (repo / "docs" / "notebooks").exists()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    server = start_server(
        [BIN / "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{port}", "--livereload"],
        f"{url}/", cwd=repo, env={**os.environ, "HANDBOOK_DRAFT": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        print(f"\ndraft mode: first page after {time.monotonic() - started:.1f} s")
        page = httpx.get(f"{url}/notebooks/monitoring/", timeout=10)
        assert page.status_code == 200
        assert "this notebook shows no outputs yet" in page.text
        assert "make notebooks" in page.text
        chapter = httpx.get(f"{url}/practices/containerization/", timeout=10)
        assert chapter.status_code == 200
        assert "is written when this chapter&rsquo;s notebook runs" in chapter.text \
            or "is written when this chapter's notebook runs" in chapter.text
    finally:
        stop(server)
    # Draft placeholders stay out of the tree that a normal build reads.
    assert not (repo / "build").exists()
