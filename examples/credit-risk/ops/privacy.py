"""Personal data in the service's logs: erase a person's lines, drop old lines.

    python -m ops.privacy erase --request-id ID [--request-id ID ...] [--labels labels.jsonl]
    python -m ops.privacy purge --older-than-days 90
    python -m ops.privacy keygen keys/log.key    # then CREDIT_RISK_LOG_KEY_FILE=keys/log.key

The prediction log and the audit log (the service's log_dir setting, or --log-dir) hold
applicants' data keyed by request id. `erase` rewrites every file of both logs, rotated ones
included, without the lines of the given request ids and of every id erased before (an audit
line of a batch keeps its line and its other ids), and likewise the outcomes file the drift
job reads (--labels); then it appends one entry per id to the folder's erasure register: the
id's sha256 (never the id), the time, and how many lines it removed from which files. Every
reader of the logs (`credit_risk.jsonl_log.read_log`, the drift job) skips registered ids,
and `purge` removes any line a worker wrote for them after the erasure. `purge` removes the
lines whose `time` is older than the given number of days.

Both run while the service serves: a rewrite holds the log folder's lock alone, so the
workers' writes wait for it (see credit_risk/jsonl_log.py) and none is lost. Each file is
rewritten atomically (temporary file, fsync, rename), stays 0600 and keeps its modification
time, which orders the rotated files for readers. Neither needs the log key: a sealed line
keeps its time and request id in the clear (credit_risk/jsonl_log.py). `keygen` writes a new
log key, readable by its owner only.
"""

import argparse
import base64
import collections
import datetime
import fcntl
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from credit_risk.jsonl_log import (
    ERASURE_REGISTER,
    KEY_BYTES,
    LOCK_FILE,
    digest,
    erased,
    log_files,
    open_private,
    redact,
    request_ids,
)
from credit_risk.settings import Settings, SettingsError

KINDS = ("predictions", "audit")
LOCK_DEADLINE_S = 30


@contextmanager
def exclusive(folder: Path, deadline_s: float = LOCK_DEADLINE_S):
    """Hold the log folder's lock alone: the service's writes wait until the block ends."""
    descriptor = open_private(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{folder} stayed locked for {deadline_s:.0f} s") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def rewrite(path: Path, change: Callable[[dict], dict | None]) -> list[dict]:
    """Replace `path` atomically by its lines passed through `change` (None drops a line);
    return the lines that changed, as they were. A file with no change stays as it is."""
    kept, changed = [], []
    for text in path.read_text().splitlines():
        line = json.loads(text)
        new = change(line)
        if new is line:
            kept.append(text)
        else:
            changed.append(line)
            if new is not None:
                kept.append(json.dumps(new))
    if changed:
        times = path.stat()
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w") as output:  # mkstemp creates it 0600
            output.write("".join(f"{text}\n" for text in kept))
            output.flush()
            os.fsync(output.fileno())
        os.utime(temporary, ns=(times.st_atime_ns, times.st_mtime_ns))
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename survives a crash too
        finally:
            os.close(directory)
    return changed


def rewrite_logs(folder: Path, change: Callable[[dict], dict | None]) -> dict[str, list[dict]]:
    """Rewrite every file of both logs in `folder` through `change`, holding the folder's
    lock: {file name: the lines that changed} for the files that changed."""
    with exclusive(folder):
        changes = {path.name: rewrite(path, change)
                   for kind in KINDS for path in log_files(folder, kind)}
    return {name: lines for name, lines in changes.items() if lines}


def erase(folder: Path, ids: list[str], labels: Path | None = None) -> list[dict]:
    """Remove the lines of the request `ids` (and of every id erased before) from the logs in
    `folder` and from the outcomes file `labels`; return the register entries written."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    new = {digest(request_id) for request_id in ids}
    erased_ids = erased(folder) | new

    def change(line: dict) -> dict | None:
        return redact(line, erased_ids)

    changes = rewrite_logs(folder, change)
    if labels is not None and labels.is_file():
        changes[str(labels)] = rewrite(labels, change)
    found = collections.defaultdict(collections.Counter)  # digest -> {file: lines}
    for name, lines in changes.items():
        for line in lines:
            for request_id in request_ids(line):
                if digest(request_id) in new:
                    found[digest(request_id)][name] += 1
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    entries = [{"request_id_sha256": key, "time": now, "lines": sum(found[key].values()),
                "files": dict(found[key])} for key in sorted(new)]
    descriptor = open_private(folder / ERASURE_REGISTER, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(descriptor, "a") as register:
        register.write("".join(json.dumps(entry) + "\n" for entry in entries))
        register.flush()
        os.fsync(register.fileno())
    return entries


def purge(folder: Path, older_than_days: float) -> dict[str, int]:
    """Remove the lines logged more than `older_than_days` ago, and any line of an erased id,
    from the logs in `folder`: {file name: lines removed or changed}."""
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(older_than_days)
    erased_ids = erased(folder)

    def change(line: dict) -> dict | None:
        if datetime.datetime.fromisoformat(line["time"]) < cutoff:
            return None
        return redact(line, erased_ids)

    if not folder.is_dir():
        return {}
    return {name: len(lines) for name, lines in rewrite_logs(folder, change).items()}


def without_erased(frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The rows of `frame` whose `request_id` is not in the erasure register of the logs in
    `folder`: apply it to every data set built from the logs (outcomes, a training snapshot)."""
    erased_ids = erased(folder)
    if not erased_ids or frame.empty:
        return frame
    return frame[~frame["request_id"].map(digest).isin(erased_ids)]


def keygen(path: Path) -> None:
    """Write a new random log key to `path` (base64, mode 0600); never over an existing file,
    which would leave the lines it sealed unreadable."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="the prediction and audit logs (default: the service's log_dir "
                             "setting)")
    commands = parser.add_subparsers(dest="command", required=True)
    erasing = commands.add_parser("erase", help="remove every line of these request ids")
    erasing.add_argument("--request-id", action="append", required=True, dest="request_ids")
    erasing.add_argument("--labels", type=Path,
                         help="the outcomes file the drift job reads (--labels there)")
    purging = commands.add_parser("purge", help="remove the lines older than N days")
    purging.add_argument("--older-than-days", type=float, required=True)
    keying = commands.add_parser("keygen", help="write a new log key (CREDIT_RISK_LOG_KEY_FILE)")
    keying.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            keygen(args.path)
            print(f"wrote a log key to {args.path}; losing it loses every line it seals")
            return 0
        folder = args.log_dir or Settings.from_env().logs
        if args.command == "erase":
            for entry in erase(folder, args.request_ids, args.labels):
                files = ", ".join(f"{name} ({count})" for name, count in entry["files"].items())
                print(f"erased request {entry['request_id_sha256'][:12]}: {entry['lines']} "
                      f"lines from {files or 'no file'}")
        else:
            if args.older_than_days < 0:
                raise ValueError("--older-than-days must not be negative")
            changed = purge(folder, args.older_than_days)
            print(f"purged {sum(changed.values())} lines from {len(changed)} files in {folder}")
    except FileExistsError:
        print(f"error: {args.path} exists; a new key there would leave its lines unreadable",
              file=sys.stderr)
        return 1
    except (ValueError, OSError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
