#!/usr/bin/env bash
# Build a Debian 12 (bookworm) + Python 3.11 base image for podman without any
# image registry: debootstrap a root filesystem and `podman import` it.
# Usage: build-base-image.sh [IMAGE_NAME]   (default localhost/handbook/python:3.11-bookworm)
# Needs root and: apt-get install -y podman runc debootstrap
# Use it where no image registry is reachable (air-gapped or locked-down build hosts); with a
# registry, the bento's default base image (python:3.11-slim-bookworm) is simpler.
set -euo pipefail

IMAGE="${1:-localhost/handbook/python:3.11-bookworm}"
SUITE=bookworm

# Idempotent: a rebuild costs ~50 s of debootstrap and yields a new image id, which
# invalidates every cached layer built on the old one.
if podman image exists "$IMAGE"; then
    echo "base image $IMAGE already exists; nothing to do"
    exit 0
fi

# No registry is reachable, but the Debian mirror apt uses is: take its URI
# (deb822 .sources first, then one-line sources.list).
MIRROR="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)"
if [[ -z "$MIRROR" ]]; then
    MIRROR="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1 || true)"
fi
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

# The rootfs is root-owned with device nodes, so keep it out of the work tree and remove it afterwards.
ROOTFS="$(mktemp -d /var/tmp/base-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

# minbase = essential + apt only; python3-venv/pip because bentos install their
# requirements with pip/uv; ca-certificates for TLS to PyPI.
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR"

# PEP 668: Debian marks the system Python as externally managed, which makes
# `pip install` (as the bento Dockerfile runs it) refuse to install system-wide.
rm -f "$ROOTFS"/usr/lib/python3.*/EXTERNALLY-MANAGED

# Hosts that reach PyPI through a TLS-intercepting proxy trust its CA only in their own store.
# Copy it in twice, because an apt-get that upgrades ca-certificates in a later build step
# regenerates /etc/ssl/certs/ca-certificates.crt from Debian's list alone:
#  1. the host's local CAs into /usr/local/share/ca-certificates, which that regeneration keeps;
#  2. the whole host bundle as /etc/ssl/host-ca-bundle.crt, which nothing regenerates, and
#     pip (pip.conf + PIP_CERT), uv and Python's ssl (SSL_CERT_FILE) point at it.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS"/usr/local/share/ca-certificates/
    chroot "$ROOTFS" update-ca-certificates >/dev/null
fi
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS"/etc/ssl/host-ca-bundle.crt
printf '[global]\ncert = /etc/ssl/host-ca-bundle.crt\n' > "$ROOTFS"/etc/pip.conf

# Same apt sources as the host (with security updates) for any apt-get in a Dockerfile;
# drop the apt package lists debootstrap leaves behind, to keep the image small.
cat > "$ROOTFS"/etc/apt/sources.list <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb

# A plain tarball becomes a one-layer image; --change sets the config a registry image would carry.
tar --numeric-owner -C "$ROOTFS" -c . | podman import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PIP_CERT=/etc/ssl/host-ca-bundle.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/host-ca-bundle.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/host-ca-bundle.crt' \
    --change 'CMD ["/usr/bin/python3"]' \
    - "$IMAGE"

podman image inspect --format '{{.Size}}' "$IMAGE" | xargs echo "built $IMAGE, size in bytes:"
