"""API keys: mint them, store only their hashes, look them up in constant time.

The command line is `python -m ops.api_keys` (new, list, rotate, revoke).

A key looks like `crk_partner-a_<43 random characters>`: the prefix lets a secret scanner
spot a leaked key, the key id says whose it is, and the random part carries 256 bits from
`secrets`. The keys file (the `api_keys_file` setting) holds one JSON
line per key: key id, sha256 of the key, scopes, creation time and, once the key has been
rotated, its expiry. Never the key itself.

Rotation gives a holder a new key under the same key id (audit log and rate limit see one
holder) and keeps the old key valid until its expiry, so the holder can switch without a
refused request. A key past its expiry is refused like a revoked one.

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
# How long a rotated key keeps working: a working day for the holder to deploy the new key,
# in any time zone, while a copy of the old key stays usable for at most a day. A key that
# leaked is rotated with an overlap of 0, which revokes it at once.
DEFAULT_OVERLAP = datetime.timedelta(hours=24)
SCOPES = ("score", "metrics")  # score: /score and /score_batch; metrics: /metrics from anywhere
# No "_" in a key id: it separates the id from the secret.
KEY_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    sha256: str
    scopes: frozenset[str]
    expires: datetime.datetime | None = None  # set when the key was rotated away


NO_RECORD = KeyRecord("", "0" * 64, frozenset())  # compared against for an unknown key id


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def expiry(entry: dict) -> datetime.datetime | None:
    """The `expires` time of a keys file entry; None when it never expires."""
    if "expires" not in entry:
        return None
    expires = datetime.datetime.fromisoformat(entry["expires"])
    if expires.tzinfo is None:
        raise ValueError(f"expires {entry['expires']!r} has no time zone")
    return expires


def read(path: Path) -> dict[str, tuple[KeyRecord, ...]]:
    """{key id: its records, oldest first} from a keys file; a missing file holds no keys.
    A key id has more than one record while a rotation overlaps."""
    if not path.exists():
        return {}
    records = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            record = KeyRecord(entry["key_id"], entry["sha256"], frozenset(entry["scopes"]),
                               expiry(entry))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a key record ({error})") from None
        records[record.key_id] = (*records.get(record.key_id, ()), record)
    return records


def verify(records: dict[str, tuple[KeyRecord, ...]], presented: str,
           now: datetime.datetime | None = None) -> KeyRecord | None:
    """The record of a valid key not past its expiry at `now` (default: the clock), else
    None. Every record of the key id is compared, one stand-in for an unknown id, so timing
    reveals nothing about the hashes."""
    key_id = presented.removeprefix(PREFIX).partition("_")[0]
    presented_digest = digest(presented)
    matching = [record for record in records.get(key_id) or (NO_RECORD,)
                if hmac.compare_digest(presented_digest, record.sha256)]
    now = now or utc_now()
    return next((record for record in matching
                 if record.expires is None or now < record.expires), None)


def mint(key_id: str, scopes, now: datetime.datetime) -> tuple[str, str]:
    """(a new key, its keys file line)."""
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    entry = {"key_id": key_id, "sha256": digest(key), "scopes": sorted(set(scopes)),
             "created": now.isoformat(timespec="seconds")}
    return key, json.dumps(entry)


def new(path: Path, key_id: str, scopes: list[str]) -> str:
    """Mint a key, store its hash in `path` and return the key (shown once, never stored)."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise ValueError(f"key id must match {KEY_ID_PATTERN.pattern}")
    if unknown := set(scopes) - set(SCOPES):
        raise ValueError(f"unknown scope(s) {sorted(unknown)}; known: {list(SCOPES)}")
    records = read(path)
    if key_id in records:
        raise ValueError(f"key id {key_id!r} exists; revoke it first or choose another id")
    key, line = mint(key_id, scopes, utc_now())
    lines = path.read_text().splitlines() if path.exists() else []
    write(path, [*lines, line])
    return key


def rotate(path: Path, key_id: str, overlap: datetime.timedelta = DEFAULT_OVERLAP,
           now: datetime.datetime | None = None) -> str:
    """Mint a new key for `key_id` with the scopes of its newest key, store its hash and
    return it. The id's older keys stay valid until `now + overlap` (or their earlier
    expiry); an overlap of 0 removes them at once, as do expiries already past."""
    if overlap < datetime.timedelta(0):
        raise ValueError("the overlap must not be negative")
    now = now or utc_now()
    current = read(path).get(key_id)
    if not current:
        raise ValueError(f"no key with id {key_id!r} in {path}")
    ends = now + overlap
    kept = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry["key_id"] == key_id:
            expires = min(ends, expiry(entry) or ends)
            if expires <= now:
                continue
            line = json.dumps(entry | {"expires": expires.isoformat(timespec="seconds")})
        kept.append(line)
    key, line = mint(key_id, current[-1].scopes, now)
    write(path, [*kept, line])
    return key


def revoke(path: Path, key_id: str) -> None:
    """Remove every key of `key_id`, a rotated one still in its overlap included."""
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
