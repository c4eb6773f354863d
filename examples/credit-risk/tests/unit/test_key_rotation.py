"""API-key rotation on a fake clock: the new key works at once, the old one until its
expiry and never after; `ops.api_keys rotate` and `list` from the command line."""

import datetime
import json
import subprocess
import sys

import pytest

from credit_risk import api_keys as keys
from ops.processes import EXAMPLE_DIR

T0 = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


def valid(path, key, now) -> bool:
    return keys.verify(keys.read(path), key, now=now) is not None


def test_during_the_overlap_both_keys_work_and_after_it_only_the_new_one(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    old = keys.new(path, "partner-a", ["score", "metrics"])
    new = keys.rotate(path, "partner-a", overlap=2 * HOUR, now=T0)
    assert new != old and new.startswith("crk_partner-a_")
    record = keys.verify(keys.read(path), new, now=T0)
    assert record.key_id == "partner-a" and record.scopes == {"score", "metrics"}
    assert record.expires is None
    for now in [T0, T0 + 2 * HOUR - datetime.timedelta(seconds=1)]:
        assert valid(path, old, now) and valid(path, new, now)
    for now in [T0 + 2 * HOUR, T0 + 1000 * HOUR]:
        assert not valid(path, old, now) and valid(path, new, now)


def test_an_overlap_of_0_revokes_the_old_key_at_once(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    old = keys.new(path, "partner-a", ["score"])
    new = keys.rotate(path, "partner-a", overlap=datetime.timedelta(0), now=T0)
    assert not valid(path, old, T0) and valid(path, new, T0)
    assert len(path.read_text().splitlines()) == 1  # the old hash is gone from the file


def test_other_holders_and_records_without_an_expiry_are_untouched(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    other = keys.new(path, "partner-b", ["score"])
    keys.new(path, "partner-a", ["score"])
    before = path.read_text().splitlines()[0]
    keys.rotate(path, "partner-a", now=T0)
    assert path.read_text().splitlines()[0] == before  # byte for byte
    assert "expires" not in json.loads(before)
    assert valid(path, other, T0 + 10_000 * HOUR)


def test_a_second_rotation_never_extends_the_first_key_and_drops_expired_ones(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    first = keys.new(path, "partner-a", ["score"])
    second = keys.rotate(path, "partner-a", overlap=keys.DEFAULT_OVERLAP, now=T0)
    third = keys.rotate(path, "partner-a", overlap=48 * HOUR, now=T0 + HOUR)
    assert not valid(path, first, T0 + keys.DEFAULT_OVERLAP)  # not extended to T0 + 49 h
    assert valid(path, second, T0 + 48 * HOUR) and valid(path, third, T0 + 49 * HOUR)
    keys.rotate(path, "partner-a", overlap=HOUR, now=T0 + 30 * HOUR)  # first has expired
    assert [r.sha256 for r in keys.read(path)["partner-a"]][:2] == [
        keys.digest(second), keys.digest(third)]


def test_rotation_refuses_an_unknown_id_and_a_negative_overlap(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    with pytest.raises(ValueError, match="no key with id 'partner-a'"):
        keys.rotate(path, "partner-a")
    keys.new(path, "partner-a", ["score"])
    with pytest.raises(ValueError, match="negative"):
        keys.rotate(path, "partner-a", overlap=-HOUR)


def test_an_expiry_without_a_time_zone_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    keys.new(path, "partner-a", ["score"])
    entry = json.loads(path.read_text()) | {"expires": "2026-01-05T09:00:00"}
    path.write_text(path.read_text() + json.dumps(entry) + "\n")
    with pytest.raises(ValueError, match=r"line 2: not a key record .*no time zone"):
        keys.read(path)


def test_the_cli_rotates_prints_the_new_key_once_and_lists_the_expiry(tmp_path):
    path = tmp_path / "api-keys.jsonl"
    old = keys.new(path, "partner-a", ["score"])

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "ops.api_keys", "--file", str(path), *args],
                              cwd=EXAMPLE_DIR, capture_output=True, text=True, timeout=60)

    assert cli("rotate", "--id", "partner-a", "--overlap-hours", "-1").returncode == 2
    assert "invalid overlap_hours value" in cli("rotate", "--id", "partner-a",
                                                "--overlap-hours", "nan").stderr
    started = keys.utc_now()
    rotated = cli("rotate", "--id", "partner-a")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert valid(path, new, started) and new not in rotated.stderr
    (old_record,) = [r for r in keys.read(path)["partner-a"] if r.expires]
    assert old_record.sha256 == keys.digest(old)
    expected = started.replace(microsecond=0) + keys.DEFAULT_OVERLAP
    assert expected <= old_record.expires <= expected + datetime.timedelta(minutes=1)
    assert cli("list").stdout == (f"partner-a score expires {old_record.expires.isoformat()}\n"
                                  f"partner-a score\n")
