"""Rotating JSON-lines logs, one file per worker: the prediction log and the audit log.

They hold personal data (an applicant's features, keyed by request id), so the folder is
created readable by its owner only (0700) and each file is 0600. `ops.privacy` rewrites the
files to erase a person's lines or to drop old ones while the service runs; the two sides
share the folder's lock file: every write holds it shared, a rewrite holds it alone, and a
writer whose file was replaced by a rewrite reopens it before writing. Readers skip the
request ids listed in the folder's erasure register (`erasures.jsonl`), whatever a file holds.

Encryption at rest: given a log key (the `log_key_file` setting, made by `python -m
ops.privacy keygen`), the service seals each prediction line: everything but its time and
request id is encrypted with AES-GCM, the request id bound to it, so a copied or changed line
does not open. Erasure and retention need no key (they go by request id and time); every
reader of the applicants' values needs it, and is refused in one line without it.
"""

import base64
import binascii
import datetime
import fcntl
import hashlib
import json
import logging
import logging.handlers
import os
from pathlib import Path

import bentoml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FILE_BYTES, FILES_KEPT = 50 * 2**20, 5
LOCK_FILE, ERASURE_REGISTER = ".rewrite.lock", "erasures.jsonl"
KEY_BYTES, NONCE_BYTES = 32, 12  # AES-256-GCM; a random 96-bit nonce per line


class LogKeyError(ValueError):
    """A log key cannot be read, or a sealed line cannot be opened; one line says which."""


def read_key(path: Path) -> bytes:
    """The log key in `path`: 32 bytes, base64 (as `python -m ops.privacy keygen` writes it)."""
    try:
        key = base64.b64decode(Path(path).read_text().strip(), validate=True)
    except (OSError, UnicodeDecodeError, binascii.Error) as error:
        raise LogKeyError(f"log key file {path} cannot be read as a base64 key: "
                          f"{error}") from None
    if len(key) != KEY_BYTES:
        raise LogKeyError(f"log key file {path} holds {len(key)} bytes; a log key has "
                          f"{KEY_BYTES}")
    return key


def seal(line: dict, key: bytes) -> dict:
    """`line` with everything but its request id encrypted, the request id bound to it."""
    secret = json.dumps({name: value for name, value in line.items() if name != "request_id"})
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), line["request_id"].encode())
    return {"request_id": line["request_id"],
            "sealed": base64.b64encode(nonce + sealed).decode()}


def unseal(line: dict, key: bytes | None, where: str) -> dict:
    """A sealed `line` opened with `key` (a plain line as it is); `where` names it in errors."""
    if "sealed" not in line:
        return line
    if key is None:
        raise LogKeyError(f"{where} is sealed: reading it needs the log key "
                          "(CREDIT_RISK_LOG_KEY_FILE)")
    raw = base64.b64decode(line["sealed"])
    try:
        secret = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                     line["request_id"].encode())
    except InvalidTag:
        raise LogKeyError(f"{where} does not open with this log key: another key sealed it, "
                          "or the line was changed") from None
    clear = {name: value for name, value in line.items() if name != "sealed"}
    return {**clear, **json.loads(secret)}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        time = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        stamp = time.isoformat(timespec="milliseconds")
        return "\n".join(json.dumps({"time": stamp, **line}) for line in record.lines)


def open_private(path: Path, flags: int) -> int:
    """os.open for files only their owner may read (0600, even if the file existed)."""
    descriptor = os.open(path, flags, 0o600)
    os.fchmod(descriptor, 0o600)
    return descriptor


class SharedLogFile(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that writes under the folder's shared lock and follows a rewrite."""

    def __init__(self, path: Path) -> None:
        self.lock_file = open_private(path.parent / LOCK_FILE, os.O_RDWR | os.O_CREAT)
        super().__init__(path, maxBytes=FILE_BYTES, backupCount=FILES_KEPT)

    def _open(self):
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=open_private)

    def emit(self, record: logging.LogRecord) -> None:
        fcntl.flock(self.lock_file, fcntl.LOCK_SH)
        try:
            if self.stream is not None and self.replaced():
                self.stream.close()
                self.stream = None  # the emit below opens the file now at the path
            super().emit(record)
        finally:
            fcntl.flock(self.lock_file, fcntl.LOCK_UN)

    def replaced(self) -> bool:
        """Whether the path no longer names the file this handler holds open."""
        try:
            current = os.stat(self.baseFilename)
        except FileNotFoundError:
            return True
        held = os.fstat(self.stream.fileno())
        return (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino)

    def close(self) -> None:
        super().close()
        if self.lock_file >= 0:
            os.close(self.lock_file)
            self.lock_file = -1


def jsonl_logger(kind: str, folder: Path) -> logging.Logger:
    """One rotating JSON-lines file per worker, `<kind>.<worker>.jsonl` in `folder`: a file
    handler is not safe across processes."""
    worker = bentoml.server_context.worker_index or 0
    logger = logging.getLogger(f"credit_risk.{kind}.{worker}")
    if not any(isinstance(handler, SharedLogFile) for handler in logger.handlers):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = SharedLogFile(folder / f"{kind}.{worker}.jsonl")
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # feature values stay out of the server log
    return logger


def digest(request_id: str) -> str:
    """How the erasure register names a request id."""
    return hashlib.sha256(request_id.encode()).hexdigest()


def erased(folder: Path) -> set[str]:
    """The digests of every request id erased from the logs in `folder`."""
    register = Path(folder) / ERASURE_REGISTER
    if not register.is_file():
        return set()
    return {json.loads(line)["request_id_sha256"]
            for line in register.read_text().splitlines() if line.strip()}


def request_ids(line: dict) -> list[str]:
    """The request ids a line is about: a prediction's or an outcome's, an audit line's."""
    return [line["request_id"]] if "request_id" in line else line.get("request_ids") or []


def redact(line: dict, erased_ids: set[str]) -> dict | None:
    """`line` without the erased request ids: None for a line about erased ids only, an audit
    line of a batch with them taken out of its `request_ids`."""
    ids = request_ids(line)
    kept = [request_id for request_id in ids if digest(request_id) not in erased_ids]
    if len(kept) == len(ids):
        return line
    return {**line, "request_ids": kept} if kept else None


def log_files(folder: Path, kind: str) -> list[Path]:
    """The files of one log in `folder`, oldest first (rotated included)."""
    return sorted(Path(folder).glob(f"{kind}.*.jsonl*"), key=lambda p: p.stat().st_mtime)


def read_log(folder: Path, kind: str, key: bytes | None = None) -> list[dict]:
    """Every line of a JSON-lines log in `folder`, oldest file first (rotated included),
    erased request ids left out, sealed lines opened with `key`. Readers take no lock, so a
    last line without its newline is one a writer has not finished: it is left out."""
    erased_ids = erased(folder)
    lines = [unseal(json.loads(line), key, f"{path}:{number}")
             for path in log_files(folder, kind)
             for number, line in enumerate(path.read_text().split("\n")[:-1], 1)]
    if not erased_ids:
        return lines
    return [kept for line in lines if (kept := redact(line, erased_ids)) is not None]


def read_prediction_log(folder: Path, key: bytes | None = None) -> list[dict]:
    """Every logged prediction in `folder`, oldest file first (rotated files included)."""
    return read_log(folder, "predictions", key)
