"""Build and run logs as Redis streams: agents append, the controller replays and follows.

A build log ends with an `end` entry; the controller then copies it to disk (the durable copy) and
lets the stream expire. A run log is a capped tail of the app's stdout and stderr."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio

RUN_LOG_MAXLEN = 10_000
BUILD_LOG_MAXLEN = 50_000
FINISHED_BUILD_LOG_TTL = 24 * 3600


@dataclass(frozen=True)
class LogLine:
    timestamp: str
    text: str


def now_iso() -> str:
    """The time now in UTC, as ISO 8601 with milliseconds and `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class LogWriter:
    """Appends lines to one log stream, batching writes; safe to share between threads."""

    def __init__(self, client: redis.Redis, key: str, maxlen: int = BUILD_LOG_MAXLEN):
        self.redis = client
        self.key = key
        self.maxlen = maxlen
        self._pending: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def write(self, text: str, timestamp: str | None = None) -> None:
        """Queue each line of `text` with its timestamp; flush every 200 lines or 0.2 s."""
        for line in text.splitlines() or [""]:
            with self._lock:
                self._pending.append({"t": timestamp or now_iso(), "l": line})
        if len(self._pending) >= 200 or time.monotonic() - self._last_flush > 0.2:
            self.flush()

    def flush(self) -> None:
        """Append the queued lines to the stream, in one round trip."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._last_flush = time.monotonic()
        if not pending:
            return
        pipe = self.redis.pipeline(transaction=False)
        for entry in pending:
            pipe.xadd(self.key, entry, maxlen=self.maxlen, approximate=True)
        pipe.execute()

    def end(self) -> None:
        """Mark the log complete (builds): followers stop after this entry."""
        self.flush()
        self.redis.xadd(self.key, {"end": "1"}, maxlen=self.maxlen, approximate=True)


async def read_stream(
    client: redis.asyncio.Redis,
    key: str,
    *,
    follow: bool,
    tail: int | None = None,
    block_ms: int = 15_000,
) -> AsyncIterator[LogLine | None]:
    """Lines of a log stream from its start (or its last `tail` lines), then, with `follow`, new
    ones as they come. Yields None when `block_ms` passes without news (a keep-alive moment)."""
    if tail is not None:
        entries = list(reversed(await client.xrevrange(key, count=tail)))
    else:
        entries = await client.xrange(key)
    last_id: Any = "0-0"
    for entry_id, fields in entries:
        last_id = entry_id
        if b"end" in fields or "end" in fields:
            return
        yield _line(fields)
    if not follow:
        return
    while True:
        response = await client.xread({key: last_id}, block=block_ms, count=500)
        if not response:
            yield None
            continue
        for _stream, new_entries in response:
            for entry_id, fields in new_entries:
                last_id = entry_id
                if b"end" in fields or "end" in fields:
                    return
                yield _line(fields)


def _line(fields: dict[Any, Any]) -> LogLine:
    return LogLine(
        timestamp=_text(fields.get(b"t", fields.get("t", ""))),
        text=_text(fields.get(b"l", fields.get("l", ""))),
    )


def read_all(client: redis.Redis, key: str) -> tuple[list[LogLine], bool]:
    """Every line of a stream and whether it has ended."""
    lines: list[LogLine] = []
    for _entry_id, fields in client.xrange(key):
        if b"end" in fields or "end" in fields:
            return lines, True
        lines.append(_line(fields))
    return lines, False
