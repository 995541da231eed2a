"""Runs one app for the process driver: its output, timestamped, into a log file, and its exit
code into a file, so that the agent (which may restart meanwhile) can read both later.

Usage: python -m spacehub.agent.drivers.supervise LOG EXIT_FILE -- COMMAND..."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from types import FrameType


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main(argv: list[str]) -> int:
    """Run the command, logging its timestamped output and recording its exit code; returns that code."""
    log_path, exit_path, separator, *command = argv
    if separator != "--" or not command:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        with open(log_path, "a", encoding="utf-8") as log, open(exit_path, "w") as handle:
            log.write(f"{_now()} cannot start {command[0]}: {exc}\n")
            handle.write("127")
        return 127

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    assert child.stdout is not None
    with open(log_path, "a", buffering=1, encoding="utf-8") as log:
        for raw in child.stdout:
            log.write(f"{_now()} {raw.decode(errors='replace').rstrip()}\n")
    code = child.wait()
    with open(exit_path, "w") as handle:
        handle.write(str(code))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
