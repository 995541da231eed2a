"""Restarting the machine's Docker engine the way it was started (systemd, or the background
dockerd that `scripts/setup.sh` starts where there is no systemd)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import docker

from tests.utils.waiting import wait_until


def _dockerd_pid() -> int:
    found = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    assert found, "no dockerd runs"
    return int(found[0])


def _engine_answers() -> bool:
    try:
        return bool(docker.from_env(timeout=5).ping())
    except Exception:
        return False


def restart_docker_engine() -> None:
    """Stop dockerd (every container stops with it) and start it again; returns once it answers."""
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "restart", "docker"], check=True)
    else:
        pid = _dockerd_pid()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=60, what="dockerd to stop")
        with open("/var/log/dockerd.log", "ab") as log:
            subprocess.Popen(
                [part.decode() for part in command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    wait_until(_engine_answers, timeout=60, what="dockerd to answer again")
