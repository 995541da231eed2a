"""What agents report to the controller, through a Redis stream (consumer group `controller`).

A stream rather than direct calls: an agent keeps reporting while the controller restarts, and
the controller applies every report exactly once it is back (pending entries are re-read)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import redis

from spacehub.state.keys import Keys

CONSUMER_GROUP = "controller"


class EventType(StrEnum):
    BUILD_STARTED = "build.started"
    BUILD_FAILED = "build.failed"
    APP_STARTING = "app.starting"
    APP_RUNNING = "app.running"
    APP_FAILED = "app.failed"
    APP_CRASHED = "app.crashed"
    APP_SLEPT = "app.slept"
    APP_LOST = "app.lost"
    WAKE_REQUESTED = "wake.requested"


@dataclass
class Event:
    type: EventType
    space_id: int
    build_id: int
    host: str = ""
    message: str = ""
    container: str = ""
    upstream: str = ""
    image: str = ""
    at: float = 0.0

    def to_fields(self) -> dict[str, str]:
        """The event as a stream entry's fields (one JSON field), stamped with the time now if unstamped."""
        data = asdict(self)
        data["type"] = self.type.value
        data["at"] = self.at or time.time()
        return {"event": json.dumps(data)}

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> Event:
        """The event a stream entry holds (as `to_fields` wrote it)."""
        raw = fields.get(b"event") or fields.get("event") or b"{}"
        data = json.loads(raw)
        data["type"] = EventType(data["type"])
        return cls(**data)


class EventStream:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.redis = client
        self.key = keys.events

    def publish(self, event: Event) -> None:
        """Append an event to the stream (capped near 100,000 entries)."""
        self.redis.xadd(self.key, event.to_fields(), maxlen=100_000, approximate=True)

    def ensure_group(self) -> None:
        """Create the controller's consumer group (and the stream) unless it exists."""
        try:
            self.redis.xgroup_create(self.key, CONSUMER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, consumer: str, block_ms: int = 2000, pending: bool = False) -> Iterator[tuple[str, Event]]:
        """Entries for this consumer: its unacknowledged ones when `pending`, else new ones."""
        start = "0" if pending else ">"
        response = self.redis.xreadgroup(
            CONSUMER_GROUP, consumer, {self.key: start}, count=100, block=None if pending else block_ms
        )
        for _stream, entries in response or []:
            for entry_id, fields in entries:
                if fields:
                    yield (
                        (entry_id.decode() if isinstance(entry_id, bytes) else entry_id),
                        Event.from_fields(fields),
                    )

    def adopt_pending(self, consumer: str) -> None:
        """Make every entry another consumer read and never acknowledged this consumer's (a
        predecessor's, under another name), so that `read(pending=True)` finds it."""
        start = "0-0"
        while True:
            cursor = self.redis.xautoclaim(self.key, CONSUMER_GROUP, consumer, 0, start, count=1000)[0]
            start = cursor.decode() if isinstance(cursor, bytes) else cursor
            if start == "0-0":
                return

    def ack(self, entry_id: str) -> None:
        """Mark an entry handled, so that it is not read again as pending."""
        self.redis.xack(self.key, CONSUMER_GROUP, entry_id)
