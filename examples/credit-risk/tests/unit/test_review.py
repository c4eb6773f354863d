"""Model 1 of the ML Test Score, enforced: `python -m ops.release` refuses to train a candidate
from model code (training/registry.py, CODE_FILES) that differs from the last commit, or that
is not in git at all, unless told `--allow-uncommitted`. The tests stand a throwaway git
repository holding copies of those files in for the example's folder."""

import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import require

from ops.release import __main__ as release_command
from training import registry

EXAMPLE_FILES = registry.EXAMPLE_DIR


def git(folder, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                    "-c", "commit.gpgsign=false", *args], cwd=folder, capture_output=True,
                   check=True)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A clean one-commit repository with the model's code files, as the example's folder."""
    require(shutil.which("git") is not None, "git is not installed")
    for name in registry.CODE_FILES + ["README.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE_FILES / name, tmp_path / name)
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "--quiet", "-m", "the model's code")
    monkeypatch.setattr(registry, "EXAMPLE_DIR", tmp_path)
    return tmp_path


def release(monkeypatch, *options: str) -> int:
    """Exit code of `python -m ops.release --until gate` with the release itself faked:
    the check comes before any stage, so reaching run() means the release was allowed."""
    monkeypatch.setattr(sys, "argv", ["ops.release", "--until", "gate", *options])
    monkeypatch.setattr(release_command, "run", lambda *args, **kwargs: SimpleNamespace(
        decision="stopped_after_gate", reason="faked"))
    with pytest.raises(SystemExit) as exit_:
        release_command.main()
    return exit_.value.code


def test_a_clean_checkout_is_released(checkout, monkeypatch, capsys):
    (checkout / "README.md").write_text("edited prose: not the model's code\n")
    assert registry.unreviewed_code() is None
    assert release(monkeypatch) == 0
    assert "stopped_after_gate" in capsys.readouterr().out


@pytest.mark.parametrize("change", ["edited", "staged", "new"])
def test_uncommitted_model_code_is_refused_in_one_line_naming_it(checkout, monkeypatch, capsys,
                                                                 change):
    if change == "new":
        (checkout / "training/model.py").unlink()
        git(checkout, "commit", "--quiet", "-am", "before training/model.py existed")
        shutil.copy(EXAMPLE_FILES / "training/model.py", checkout / "training/model.py")
    else:
        with (checkout / "training/model.py").open("a") as model:
            model.write("DEFAULT_PARAMS = {**DEFAULT_PARAMS, 'max_iter': 900}\n")
        if change == "staged":
            git(checkout, "add", "training/model.py")
    assert release(monkeypatch) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("refusing to train a candidate: uncommitted changes to "
                            "training/model.py ")


def test_allow_uncommitted_releases_anyway(checkout, monkeypatch):
    (checkout / "training/data.py").write_text("# changed\n")
    assert registry.unreviewed_code() == "uncommitted changes to training/data.py"
    assert release(monkeypatch, "--allow-uncommitted") == 0


def test_a_copy_outside_git_is_refused(tmp_path, monkeypatch, capsys):
    """A copy of the example that is not in git (as tests/test_examples.py makes) shows no
    review either, so it is refused, not waved through."""
    monkeypatch.setattr(registry, "EXAMPLE_DIR", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert release(monkeypatch) == 1
    assert "is not in a git repository with a commit" in capsys.readouterr().err
