"""Make a signing key pair; sign or verify a stored model's directory.

    python -m ops.signing keygen keys/                      # keys/model-signing.{key,pub}
    CREDIT_RISK_SIGNING_KEY=keys/model-signing.key python train.py   # trains and signs
    python -m ops.signing verify credit_risk:latest --public-key keys/model-signing.pub
    python -m ops.signing sign credit_risk:<version> --private-key keys/model-signing.key

The private key signs, so it stays with whoever may release models (a CI secret, a KMS or
an HSM in earnest); the public key only verifies and ships with the service
(CREDIT_RISK_SIGNING_PUBLIC_KEY). Nothing here uses the network.
"""

import argparse
import os
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


def model_folder(tag: str) -> Path:
    import bentoml

    return Path(bentoml.models.get(tag).path)


def main() -> None:
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
    args = parser.parse_args()

    if args.command == "keygen":
        private_path, public_path = keygen(args.folder)
        print(f"private key {private_path} (keep it secret), public key {public_path}")
        return
    folder = model_folder(args.tag)
    started = time.perf_counter()
    if args.command == "sign":
        artifact.seal(folder, args.private_key)
    else:
        artifact.check_manifest(folder)
        artifact.verify_signature(folder, args.public_key)
    print(f"{args.command}: {folder} ok in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
