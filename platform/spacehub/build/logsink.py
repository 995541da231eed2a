"""Where a build writes its output: anything with `write` (the agent passes a Redis log stream, tests
a list). Builds know nothing of where their log goes."""

from __future__ import annotations

from typing import Protocol


class LogSink(Protocol):
    def write(self, text: str, timestamp: str | None = None) -> None:
        """Append `text` (one or more lines) to the log."""

    def flush(self) -> None:
        """Deliver what was written so far (a sink may batch)."""
