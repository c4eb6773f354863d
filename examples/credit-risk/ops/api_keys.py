"""Mint, list and revoke API keys in the service's keys file.

    python -m ops.api_keys new --id partner-a --scope score     # prints the key once
    python -m ops.api_keys list
    python -m ops.api_keys revoke --id partner-a

The keys file is the service's (`CREDIT_RISK_API_KEYS_FILE`, by default
`<state dir>/api-keys.jsonl`); it holds only the keys' sha256.
"""

import argparse
import sys
from pathlib import Path

from credit_risk.api_keys import SCOPES, new, read, revoke
from credit_risk.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=None,
                        help="keys file (default: the service's api_keys_file setting)")
    commands = parser.add_subparsers(dest="command", required=True)
    minting = commands.add_parser("new", help="mint a key; prints it once")
    minting.add_argument("--id", required=True, help="who holds the key, e.g. partner-a")
    minting.add_argument("--scope", action="append", required=True, choices=SCOPES)
    commands.add_parser("list", help="key ids and scopes (never keys)")
    revoking = commands.add_parser("revoke", help="remove a key; the service notices in 1 s")
    revoking.add_argument("--id", required=True)
    args = parser.parse_args(argv)
    try:
        path = args.file or Settings.from_env().keys_file
        if args.command == "new":
            print(new(path, args.id, args.scope))
            print(f"stored the hash of key {args.id!r} in {path}; the key is not shown again",
                  file=sys.stderr)
        elif args.command == "list":
            for record in read(path).values():
                print(record.key_id, ",".join(sorted(record.scopes)))
        else:
            revoke(path, args.id)
    except (ValueError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
