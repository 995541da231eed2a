#!/usr/bin/env bash
# Installs what spacehub needs on a Debian machine, as root, and only what is missing:
# git, Redis, the Docker engine (Debian's docker.io) with a running dockerd, debootstrap (base
# images without a registry), and a virtualenv with spacehub in .venv.
# Usage: scripts/setup.sh [--test]    (--test adds Chromium and the test dependencies)
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1

packages=(git redis-server docker.io debootstrap iptables ca-certificates python3 python3-venv libnss-myhostname haproxy)
(( with_tests )) && packages+=(chromium fonts-noto-color-emoji docker-registry postgresql iproute2)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if (( ${#missing[@]} )); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Docker engine: started by systemd where there is one, else in the background.
if ! /usr/bin/docker info >/dev/null 2>&1; then
    if [[ -d /run/systemd/system ]]; then
        systemctl start docker
    else
        echo "setup: starting dockerd (log in /var/log/dockerd.log)"
        setsid nohup /usr/sbin/dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
    fi
    for _ in $(seq 1 60); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 1; done
    /usr/bin/docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

# The virtualenv, reinstalled when the project's dependencies change.
extras=$([[ $with_tests == 1 ]] && echo "dev" || echo "")
stamp=".venv/.installed-${extras:-base}"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
    echo "setup: installing Python dependencies in .venv"
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e ".${extras:+[$extras]}"
    touch "$stamp"
fi
