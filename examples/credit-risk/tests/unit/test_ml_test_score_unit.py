"""Model 1 of the ML Test Score, the part a test can see: the lineage stored with each model
names the commit its code came from, and says "uncommitted" whenever the code could differ
from every commit. (That the commit was reviewed is up to the repository's branch rules.)"""

import shutil
import subprocess

import pytest
from conftest import require

from training import registry


def git(folder, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                            check=True)
    return result.stdout.strip()


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A one-commit git repository standing in for the example's folder."""
    require(shutil.which("git") is not None, "git is not installed")
    git(tmp_path, "init", "--quiet")
    (tmp_path / "train.py").write_text("PARAMS = {'max_iter': 150}\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "--quiet",
        "-m", "params")
    monkeypatch.setattr(registry, "EXAMPLE_DIR", tmp_path)
    return tmp_path


def test_a_clean_checkout_records_its_commit(repository):
    assert registry.git_commit() == git(repository, "rev-parse", "HEAD")


@pytest.mark.parametrize("change", ["edit", "new file"])
def test_local_changes_are_recorded_as_uncommitted(repository, change):
    if change == "edit":
        (repository / "train.py").write_text("PARAMS = {'max_iter': 900}\n")
    else:
        (repository / "tuning.py").write_text("PARAMS = {}\n")
    assert registry.git_commit() == "uncommitted"


def test_code_outside_git_is_recorded_as_uncommitted(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "EXAMPLE_DIR", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert registry.git_commit() == "uncommitted"

