"""Reading the files the commands are given, with one-line errors instead of tracebacks."""

import json
import os
from pathlib import Path

import yaml


class InputError(Exception):
    """A file is missing, unreadable or malformed. The CLI prints the message and exits 2."""


def read_text(path: Path, what: str) -> str:
    """The text of `path`; `what` names the file in the error ("model card", "alert rules")."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {what} {path}: {error}") from None


def parse_yaml(text: str, where: str, first_line: int = 1):
    """YAML from a string; `where` says where the text came from, `first_line` which line
    of that file the text starts on (for the error message)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + first_line}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(f"{where} is not valid YAML{line}: {problem}") from None


def load_yaml(path: Path, what: str):
    return parse_yaml(read_text(path, what), f"{what} {path}")


def load_json(path: Path, what: str):
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as error:
        raise InputError(f"{what} {path} is not valid JSON at line {error.lineno}: "
                         f"{error.msg}") from None


# Folders that hold tools, caches or build output rather than the project's own files.
SKIPPED_FOLDERS = {".git", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox",
                   ".pytest_cache", ".ruff_cache", ".mypy_cache", "site", "build", "dist"}
# Hidden folders that do hold project files (CI configuration).
KEPT_HIDDEN = {".github", ".circleci", ".gitlab"}


def project_files(root: Path, *patterns: str) -> list[Path]:
    """Files under `root` whose path matches a glob pattern (matched from the right, so
    ".github/workflows/*.yml" works), sorted, without tool, build and hidden folders."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS
                         and (not name.startswith(".") or name in KEPT_HIDDEN)]
        found += [Path(folder) / name for name in files
                  if any((Path(folder) / name).match(pattern) for pattern in patterns)]
    return sorted(found)
