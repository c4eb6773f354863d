"""Pins: every example's requirements.txt runs the versions the handbook tested."""

import re

import pytest

from conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)", re.M)
EXAMPLE_LOCKS = sorted((ROOT / "examples").glob("*/requirements*.txt"))
IDS = [str(p.relative_to(ROOT / "examples")) for p in EXAMPLE_LOCKS]


def pins(path):
    found = PIN.findall(path.read_text())
    return {name.lower().replace("_", "-"): version for name, version in found}


def test_lock_pins_every_package():
    lines = [line for line in (ROOT / "requirements.lock").read_text().splitlines()
             if line and not line.startswith((" ", "#"))]
    assert lines and all(PIN.match(line) for line in lines), [x for x in lines if not PIN.match(x)]


@pytest.mark.parametrize("locked", EXAMPLE_LOCKS, ids=IDS)
def test_example_pins_match_the_handbook_lock(locked):
    lock, own = pins(ROOT / "requirements.lock"), pins(locked)
    assert own, f"{locked.name} pins nothing"
    assert {name: v for name, v in own.items() if lock.get(name) != v} == {}


@pytest.mark.parametrize("locked", EXAMPLE_LOCKS, ids=IDS)
def test_example_pins_cover_its_direct_requirements(locked):
    wanted = {re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
              for line in locked.with_suffix(".in").read_text().splitlines()
              if line.strip() and not line.startswith(("#", "-r"))}
    assert wanted <= set(pins(locked))
