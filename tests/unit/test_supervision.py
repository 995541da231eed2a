"""`spacehub up`'s supervision: a process that keeps dying starts again with a growing delay, and is
never given up."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from spacehub.config import Settings
from spacehub.launcher import BACKOFF, MAX_BACKOFF, Platform, RotatingLog
from tests.utils.waiting import wait_until


def test_a_process_that_keeps_dying_is_started_again_forever(tmp_path: Path) -> None:
    now = [0.0]
    platform = Platform(Settings(data_dir=tmp_path), {}, clock=lambda: now[0])
    platform.start("crasher", [sys.executable, "-c", "print('going down'); raise SystemExit(3)"])
    child = platform.children["crasher"]
    delays = []
    for _ in range(10):  # twice the old lifetime limit
        process = child.process
        assert process is not None
        process.wait(timeout=30)
        platform.check()  # notices the death, schedules the start
        assert child.process is None
        delays.append(child.next_start - now[0])
        now[0] = child.next_start - 0.01
        platform.check()
        assert child.process is None  # not before its delay
        now[0] = child.next_start
        platform.check()
        assert child.process is not None  # started again
    assert delays[:4] == [BACKOFF, 2 * BACKOFF, 4 * BACKOFF, 8 * BACKOFF]
    assert delays[-1] == MAX_BACKOFF
    log = tmp_path / "logs" / "processes" / "crasher.log"
    wait_until(
        lambda: log.read_text().count("going down") >= 10, timeout=10, what="every run's output in its log"
    )
    platform.stop()


def test_logs_rotate_past_their_size(tmp_path: Path) -> None:
    path = tmp_path / "chatty.log"
    log = RotatingLog(path, max_bytes=10_000, backups=2)
    reader, writer = os.pipe()
    with open(reader, "rb") as source, open(writer, "wb") as out:
        thread = log.follow(source)
        for i in range(2_000):
            out.write(f"line {i:05} {'x' * 40}\n".encode())
        out.close()
        thread.join(timeout=10)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all(p.stat().st_size <= 10_100 for p in tmp_path.iterdir())
    assert "line 01999" in path.read_text()
