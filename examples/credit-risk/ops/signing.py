r"""Make a signing key pair; sign or verify a stored model's directory; rotate the key.

    python -m ops.signing keygen keys/                      # keys/model-signing.{key,pub}
    CREDIT_RISK_SIGNING_KEY=keys/model-signing.key python train.py   # trains and signs
    python -m ops.signing verify credit_risk:latest --public-key keys/model-signing.pub
    python -m ops.signing sign credit_risk:<version> --private-key keys/model-signing.key

The private key signs, so it stays with whoever may release models (a CI secret, a KMS or
an HSM in earnest); the public key only verifies and ships with the service
(CREDIT_RISK_SIGNING_PUBLIC_KEY). Nothing here uses the network.

Rotating the key takes two commands with one restart between them (RUNBOOK.md, "Rotating
keys"):

    python -m ops.signing rotate --public-key keys/model-signing.pub --keys-dir keys/next \
        --model credit_risk:<version> [--model ...]     # adds model.next.sig by the new key
    # restart the service with CREDIT_RISK_SIGNING_PUBLIC_KEY=keys/next/model-signing.pub
    python -m ops.signing retire --public-key keys/next/model-signing.pub \
        --model credit_risk:<version> [--model ...]     # model.next.sig becomes model.sig

Between them every model carries a signature by each key, so a service started with either
public key loads it. The service could instead trust a set of public keys: that needs a
setting that is a list and two restarts (to add the new key before re-signing, to drop the
old one after), where this needs one.
"""

import argparse
import os
import sys
import time
from pathlib import Path

from credit_risk import artifact


# --8<-- [start:keygen]
def keygen(folder: Path) -> tuple[Path, Path]:
    """Write an ECDSA P-256 key pair: model-signing.key (private, mode 600) and .pub."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / "model-signing.key", folder / "model-signing.pub"
    key = ec.generate_private_key(ec.SECP256R1())
    # Created with mode 600 from the start: never readable by others, not even for a moment.
    with os.fdopen(os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path
# --8<-- [end:keygen]


def rotate(folders: list[Path], public_key: Path, keys_dir: Path) -> Path:
    """Sign each model directory, once it passes the current `public_key`, into
    model.next.sig with the key pair in `keys_dir` (made there if absent, so a forgotten
    model can be added by running it again); returns the new public key."""
    private_path, public_path = keys_dir / "model-signing.key", keys_dir / "model-signing.pub"
    if not public_path.is_file():
        keygen(keys_dir)
    if public_path.read_bytes() == Path(public_key).read_bytes():
        raise ValueError(f"{public_path} is the current public key; rotate to a new folder")
    for folder in folders:
        artifact.check_manifest(folder)
        artifact.verify_signature(folder, public_key)  # endorse only what the old key signed
        artifact.sign(folder, private_path, artifact.NEXT_SIGNATURE)
        artifact.verify_signature(folder, public_path, names=(artifact.NEXT_SIGNATURE,))
    return public_path


def retire(folders: list[Path], public_key: Path) -> None:
    """Replace each model directory's model.sig (the old key's) with its model.next.sig,
    once that passes the new `public_key`."""
    for folder in folders:
        following = folder / artifact.NEXT_SIGNATURE
        if not following.is_file():
            raise artifact.ArtifactError(f"{following} is missing: run `rotate` for this "
                                         f"model first")
        artifact.verify_signature(folder, public_key, names=(artifact.NEXT_SIGNATURE,))
        os.replace(following, folder / artifact.SIGNATURE)  # at once: a start sees one or other


def model_folder(tag: str) -> Path:
    import bentoml

    return Path(bentoml.models.get(tag).path)


def main(argv: list[str] | None = None) -> int:
    import bentoml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("keygen", help="write a new key pair into a folder")
    make.add_argument("folder", type=Path)
    sign = commands.add_parser("sign", help="(re)write a stored model's manifest and signature")
    sign.add_argument("tag")
    sign.add_argument("--private-key", type=Path, required=True)
    verify = commands.add_parser("verify", help="check a stored model against a public key")
    verify.add_argument("tag")
    verify.add_argument("--public-key", type=Path, required=True)
    rotating = commands.add_parser("rotate", help="sign stored models with a new key pair too")
    rotating.add_argument("--public-key", type=Path, required=True,
                          help="the current public key, which each model must pass first")
    rotating.add_argument("--keys-dir", type=Path, required=True,
                          help="folder for the new key pair (used if it holds one already)")
    retiring = commands.add_parser("retire", help="drop the old key's signatures")
    retiring.add_argument("--public-key", type=Path, required=True, help="the new public key")
    for command in (rotating, retiring):
        command.add_argument("--model", action="append", required=True, metavar="TAG",
                             help="a stored model; repeat it for every version the service "
                                  "may load (rollback targets too)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        if args.command == "keygen":
            private_path, public_path = keygen(args.folder)
            print(f"private key {private_path} (keep it secret), public key {public_path}")
            return 0
        if args.command == "rotate":
            public_path = rotate([model_folder(t) for t in args.model], args.public_key,
                                 args.keys_dir)
            print(f"rotate: {len(args.model)} model(s) signed by both keys; restart the "
                  f"service with CREDIT_RISK_SIGNING_PUBLIC_KEY={public_path}, then retire")
            return 0
        if args.command == "retire":
            retire([model_folder(t) for t in args.model], args.public_key)
            print(f"retire: {len(args.model)} model(s) signed by {args.public_key} alone")
            return 0
        folder = model_folder(args.tag)
        if args.command == "sign":
            artifact.seal(folder, args.private_key)
        else:
            artifact.check_manifest(folder)
            artifact.verify_signature(folder, args.public_key)
    except (artifact.ArtifactError, bentoml.exceptions.NotFound, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.command}: {folder} ok in {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
