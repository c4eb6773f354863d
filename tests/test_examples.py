"""Every example works when copied out of the repository: its README's steps, run as written.

The steps are the bash blocks between the README's `steps` markers. They run in a fresh
copy in a temporary folder, with a new virtual environment installed from the example's
own requirements.txt, so a missing requirement or a path into the repository fails here.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT, free_port, start_server, stop

EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "README.md").is_file())
DEFAULT_PORT = "3000"


def readme_steps(readme: Path) -> list[str]:
    """The bash blocks inside the README's steps section, in order, dedented."""
    text = readme.read_text()
    section = text.split("[start:steps]", 1)[1].split("[end:steps]", 1)[0]
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```", section, flags=re.S | re.M)
    return ["\n".join(line[len(indent):] for line in body.splitlines()) for indent, body in blocks]


def run_bash(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=2400,
    )


@pytest.fixture
def copy_of(tmp_path):
    def copy(example: Path) -> Path:
        target = tmp_path / example.name
        shutil.copytree(example, target, ignore=shutil.ignore_patterns(
            "__pycache__", ".pytest_cache", ".venv", "*.pyc"))
        return target
    return copy


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_readme_steps_work_in_a_copy(example, copy_of, tmp_path):
    workdir = copy_of(example)
    port = str(free_port())
    steps = [step.replace(DEFAULT_PORT, port) for step in readme_steps(example / "README.md")]
    serve_index = next(i for i, step in enumerate(steps) if step.startswith("bentoml serve"))
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "PYTHON", "BENTOML", "CREDIT_RISK"))
    }
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT))
    )
    env["BENTOML_HOME"] = str(tmp_path / "bentoml-home")
    env["CREDIT_RISK_STATE_DIR"] = str(tmp_path / "state")  # keys file, logs: not in $HOME
    # Which tests ran, for the checklist's "linked tests were collected and run" check.
    junit = ROOT / "build" / "junit"
    junit.mkdir(parents=True, exist_ok=True)
    env["PYTEST_ADDOPTS"] = f"--junitxml={junit / f'{example.name}-readme.xml'}"

    setup = run_bash("\n".join(steps[:serve_index]), workdir, env)
    assert setup.returncode == 0, f"steps failed:\n{setup.stdout[-3000:]}\n{setup.stderr[-3000:]}"
    summary = setup.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), setup.stdout[-2000:]
    if IN_CI:
        assert "skipped" not in summary, f"in CI nothing may skip:\n{setup.stdout[-3000:]}"

    # The README runs the fast tiers; the slower ones run here, in the same copy and venv.
    if (workdir / "tests" / "served").is_dir():
        slow_env = {**env, "PYTEST_ADDOPTS": f"--junitxml={junit / f'{example.name}-slow.xml'}"}
        slow = run_bash('. .venv/bin/activate && pytest -q -m "retrain or served or system"',
                        workdir, slow_env)
        slow_summary = slow.stdout.strip().splitlines()[-1] if slow.stdout.strip() else ""
        assert slow.returncode == 0, f"retrain/served/system tiers failed:\n{slow.stdout[-6000:]}"
        if IN_CI:
            assert "skipped" not in slow_summary, f"in CI nothing may skip:\n{slow.stdout[-3000:]}"

    server = start_server(
        ["bash", "-c", f". .venv/bin/activate && exec {steps[serve_index]}"],
        f"http://127.0.0.1:{port}/readyz", cwd=workdir, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for step in steps[serve_index + 1:]:
            called = run_bash(step, workdir, env)
            assert called.returncode == 0, called.stderr
            # Every example names the model version in its answers (a handbook convention).
            assert "model_version" in json.loads(called.stdout), called.stdout
    finally:
        stop(server)
