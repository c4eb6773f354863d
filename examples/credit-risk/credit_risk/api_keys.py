"""API keys: mint them, store only their hashes, look them up in constant time.

The command line is `python -m ops.api_keys` (new, list, revoke).

A key looks like `crk_partner-a_<43 random characters>`: the prefix lets a secret scanner
spot a leaked key, the key id says whose it is, and the random part carries 256 bits from
`secrets`. The keys file (the `api_keys_file` setting) holds one JSON
line per key: key id, sha256 of the key, scopes, creation time. Never the key itself.

Why sha256 and not bcrypt or argon2: a slow hash protects passwords, which people choose from
a small space an attacker can enumerate. A random 256-bit key cannot be enumerated whatever
the hash costs, so a slow hash would add no protection and would cost every request tens of
milliseconds of CPU, a denial-of-service lever in itself. sha256 costs about a microsecond.
"""

import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

PREFIX = "crk_"
SCOPES = ("score", "metrics")  # score: /score and /score_batch; metrics: /metrics from anywhere
# No "_" in a key id: it separates the id from the secret.
KEY_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    sha256: str
    scopes: frozenset[str]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read(path: Path) -> dict[str, KeyRecord]:
    """{key id: record} from a keys file; a missing file holds no keys."""
    if not path.exists():
        return {}
    records = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            record = KeyRecord(entry["key_id"], entry["sha256"], frozenset(entry["scopes"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a key record ({error})") from None
        records[record.key_id] = record
    return records


def verify(records: dict[str, KeyRecord], presented: str) -> KeyRecord | None:
    """The record of a valid key, else None. The comparison takes the same time whether
    the key is right, wrong or of an unknown id, so timing reveals nothing about the hash."""
    key_id = presented.removeprefix(PREFIX).partition("_")[0]
    record = records.get(key_id)
    expected = record.sha256 if record else "0" * 64
    matches = hmac.compare_digest(digest(presented), expected)
    return record if matches and record is not None else None


def new(path: Path, key_id: str, scopes: list[str]) -> str:
    """Mint a key, store its hash in `path` and return the key (shown once, never stored)."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise ValueError(f"key id must match {KEY_ID_PATTERN.pattern}")
    if unknown := set(scopes) - set(SCOPES):
        raise ValueError(f"unknown scope(s) {sorted(unknown)}; known: {list(SCOPES)}")
    records = read(path)
    if key_id in records:
        raise ValueError(f"key id {key_id!r} exists; revoke it first or choose another id")
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    entry = {"key_id": key_id, "sha256": digest(key), "scopes": sorted(set(scopes)),
             "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    lines = path.read_text().splitlines() if path.exists() else []
    write(path, [*lines, json.dumps(entry)])
    return key


def revoke(path: Path, key_id: str) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.strip() and json.loads(line)["key_id"] != key_id]
    if len(kept) == len([line for line in lines if line.strip()]):
        raise ValueError(f"no key with id {key_id!r} in {path}")
    write(path, kept)


def write(path: Path, lines: list[str]) -> None:
    """Replace the file at once (a running service re-reads it and must never see half of
    it), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as output:
        output.write("".join(f"{line}\n" for line in lines))
    os.replace(temporary, path)
