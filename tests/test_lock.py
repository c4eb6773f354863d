"""Pins: every example's requirements.txt runs the versions the handbook tested."""

import re

import pytest

from conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)", re.M)
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "requirements.txt").is_file())


def pins(path):
    found = PIN.findall(path.read_text())
    return {name.lower().replace("_", "-"): version for name, version in found}


def test_lock_pins_every_package():
    lines = [line for line in (ROOT / "requirements.lock").read_text().splitlines()
             if line and not line.startswith((" ", "#"))]
    assert lines and all(PIN.match(line) for line in lines), [x for x in lines if not PIN.match(x)]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_pins_match_the_handbook_lock(example):
    lock, own = pins(ROOT / "requirements.lock"), pins(example / "requirements.txt")
    assert own, "requirements.txt pins nothing"
    assert {name: v for name, v in own.items() if lock.get(name) != v} == {}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_pins_cover_its_direct_requirements(example):
    wanted = {re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
              for line in (example / "requirements.in").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert wanted <= set(pins(example / "requirements.txt"))
