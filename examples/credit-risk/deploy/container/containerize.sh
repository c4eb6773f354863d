#!/usr/bin/env bash
# Build an OCI image from a BentoML 1.4 bento with podman (no Docker engine, no registry).
# Usage: containerize.sh BENTO_TAG IMAGE_TAG
#   BENTO_TAG  e.g. credit_risk_service:latest (looked up in $BENTOML_HOME)
#   IMAGE_TAG  e.g. localhost/credit_risk_service:dev
# Uses the `bentoml` on PATH (activate the virtual environment first) and $BENTOML_HOME.
# Without a registry the bento must name a local base image: build it with
# BENTO_BASE_IMAGE=localhost/handbook/python:3.11-bookworm (see build-base-image.sh).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BENTO_TAG IMAGE_TAG" >&2
    exit 2
fi
BENTO_TAG="$1"
IMAGE_TAG="$2"

# FROM cannot be pulled here, so fail early and clearly if the bento's base image is not local.
# (FORCE_COLOR, which Jupyter kernels may set, would wrap the path in terminal escapes, and
# bentoml prints through rich, which breaks a path longer than COLUMNS, 80 by default, in two.)
BENTO_DIR="$(env -u FORCE_COLOR COLUMNS=100000 BENTOML_DO_NOT_TRACK=true \
    bentoml get "$BENTO_TAG" -o path)"
BASE_IMAGE="$(awk 'toupper($1) == "FROM" {print $2; exit}' "$BENTO_DIR/env/docker/Dockerfile")"
if ! podman image exists "$BASE_IMAGE"; then
    echo "base image $BASE_IMAGE (FROM in $BENTO_DIR/env/docker/Dockerfile) is not in local podman storage;" \
        "build it first (build-base-image.sh)" >&2
    exit 1
fi

# bentoml renders the bento's Dockerfile into a temporary build context (with the bento's
# models) and runs `podman build`, passing each --opt through as a podman build flag:
#  isolation=chroot: RUN steps run in a chroot, not in a runc container, so they do not depend
#                    on runc's rlimit handling (which breaks `podman run` here without --ulimit);
#  network=host:     RUN steps (apt-get update, pip install uv, uv pip install) reach the Debian
#                    mirror and PyPI over the host network, not through the netavark bridge.
bentoml containerize --backend podman \
    --opt isolation=chroot \
    --opt network=host \
    --image-tag "$IMAGE_TAG" \
    "$BENTO_TAG"

podman image inspect --format '{{.Size}}' "$IMAGE_TAG" | xargs echo "built $IMAGE_TAG, size in bytes:"
