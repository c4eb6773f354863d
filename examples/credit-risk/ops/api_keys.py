"""Mint, list, rotate and revoke API keys in the service's keys file.

    python -m ops.api_keys new --id partner-a --scope score     # prints the key once
    python -m ops.api_keys list
    python -m ops.api_keys rotate --id partner-a                # new key; old one valid 24 h
    python -m ops.api_keys rotate --id partner-a --overlap-hours 0   # leaked: old one dies now
    python -m ops.api_keys revoke --id partner-a

The keys file is the service's (`CREDIT_RISK_API_KEYS_FILE`, by default
`<state dir>/api-keys.jsonl`); it holds only the keys' sha256.
"""

import argparse
import datetime
import sys
from pathlib import Path

from credit_risk.api_keys import DEFAULT_OVERLAP, SCOPES, new, read, revoke, rotate
from credit_risk.settings import Settings, SettingsError

MAX_OVERLAP_HOURS = 30 * 24  # a key kept alive longer than a month was not rotated


def overlap_hours(text: str) -> float:
    """An --overlap-hours value: a number of hours from 0 to MAX_OVERLAP_HOURS."""
    hours = float(text)
    if not 0 <= hours <= MAX_OVERLAP_HOURS:  # also refuses nan
        raise ValueError(text)
    return hours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=None,
                        help="keys file (default: the service's api_keys_file setting)")
    commands = parser.add_subparsers(dest="command", required=True)
    minting = commands.add_parser("new", help="mint a key; prints it once")
    minting.add_argument("--id", required=True, help="who holds the key, e.g. partner-a")
    minting.add_argument("--scope", action="append", required=True, choices=SCOPES)
    commands.add_parser("list", help="key ids, scopes and expiries (never keys)")
    rotating = commands.add_parser("rotate", help="mint a new key for a key id with the same "
                                                  "scopes; prints it once")
    rotating.add_argument("--id", required=True)
    rotating.add_argument("--overlap-hours", type=overlap_hours, metavar="0..720",
                          default=DEFAULT_OVERLAP.total_seconds() / 3600,
                          help="hours the old key keeps working (default: %(default)g; "
                               "0 revokes it at once)")
    revoking = commands.add_parser("revoke", help="remove every key of a key id; the service "
                                                   "notices in 1 s")
    revoking.add_argument("--id", required=True)
    args = parser.parse_args(argv)
    try:
        path = args.file or Settings.from_env().keys_file
        if args.command == "new":
            print(new(path, args.id, args.scope))
            print(f"stored the hash of key {args.id!r} in {path}; the key is not shown again",
                  file=sys.stderr)
        elif args.command == "list":
            for record in [r for records in read(path).values() for r in records]:
                expires = f" expires {record.expires.isoformat()}" if record.expires else ""
                print(record.key_id, ",".join(sorted(record.scopes)) + expires)
        elif args.command == "rotate":
            overlap = datetime.timedelta(hours=args.overlap_hours)
            print(rotate(path, args.id, overlap))
            print(f"stored the hash of a new key {args.id!r} in {path}; the key is not shown "
                  f"again; the old key works for {args.overlap_hours:g} more hour(s)",
                  file=sys.stderr)
        else:
            revoke(path, args.id)
    except (ValueError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
