#!/bin/sh
# Build a minimal Debian image with Python, for hosts that cannot pull from a registry.
# Usage: rootfs.sh SUITE IMAGE [MIRROR]    (as root; needs debootstrap and docker)
set -eu
suite=$1
image=$2
mirror=${3:-http://deb.debian.org/debian}
docker=${DOCKER:-docker}

root=$(mktemp -d /var/tmp/spacehub-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT INT TERM

debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    "$suite" "$root" "$mirror"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | "$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    - "$image"
