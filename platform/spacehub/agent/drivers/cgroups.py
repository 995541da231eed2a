"""What a container really uses, read from its cgroup: memory without the page cache the kernel can
drop (as `docker stats` counts it) and CPU time. Reading two small files costs microseconds, where
the engine's stats call takes a second per container: an agent with hundreds of apps reads these
every few seconds.

cgroup v1 and v2, with Docker's `cgroupfs` or `systemd` cgroup driver."""

from __future__ import annotations

import os
from pathlib import Path

from spacehub.agent.drivers.base import Usage

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _v2_dirs(container_id: str) -> list[Path]:
    return [
        CGROUP_ROOT / "system.slice" / f"docker-{container_id}.scope",
        CGROUP_ROOT / "docker" / container_id,
    ]


def _v1_dirs(controller: str, container_id: str) -> list[Path]:
    base = CGROUP_ROOT / controller
    return [base / "docker" / container_id, base / "system.slice" / f"docker-{container_id}.scope"]


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def container_usage(container_id: str) -> Usage | None:
    """The container's usage from its cgroup, or None where its cgroup is not visible here."""
    for directory in _v2_dirs(container_id):
        current = _read_int(directory / "memory.current")
        if current is not None:
            memory = current - _stat_value(directory / "memory.stat", "inactive_file")
            cpu = _stat_value(directory / "cpu.stat", "usage_usec") / 1e6
            return Usage(memory=max(memory, 0), cpu_seconds=cpu)
    for directory in _v1_dirs("memory", container_id):
        current = _read_int(directory / "memory.usage_in_bytes")
        if current is not None:
            memory = current - _stat_value(directory / "memory.stat", "total_inactive_file")
            cpu_ns = next(
                (
                    n
                    for d in _v1_dirs("cpuacct", container_id)
                    if (n := _read_int(d / "cpuacct.usage")) is not None
                ),
                0,
            )
            return Usage(memory=max(memory, 0), cpu_seconds=cpu_ns / 1e9)
    return None


def process_group_usage(session_id: int) -> Usage | None:
    """Resident memory and CPU time of every process in one session (the process driver's apps)."""
    ticks = os.sysconf("SC_CLK_TCK")
    memory, cpu, found = 0, 0.0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != session_id:  # field 6 of stat, counted after the command name
                continue
            rss_pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found = True
        memory += rss_pages * os.sysconf("SC_PAGE_SIZE")
        cpu += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return Usage(memory=memory, cpu_seconds=cpu) if found else None
