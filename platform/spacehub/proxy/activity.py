"""Counting real use of apps, for sleep: requests and WebSocket messages from visitors, not the
pings and heartbeat streams that clients keep open on their own."""

from __future__ import annotations

import logging
import time

import redis.asyncio

from spacehub.state.events import Event, EventType
from spacehub.state.keys import Keys

log = logging.getLogger(__name__)

# Paths clients hit by themselves while a page is merely open.
BACKGROUND_PATHS = (
    "/gradio_api/heartbeat/",
    "/heartbeat/",
    "/_stcore/health",
    "/_stcore/host-config",
    "/.spacehub/status",
    "/favicon.ico",
)
WRITE_EVERY = 10.0
WAKE_EVERY = 5.0


def is_background(path: str) -> bool:
    path = path.split("?", 1)[0]
    return any(marker in path for marker in BACKGROUND_PATHS)


class Activity:
    """Writes a space's last activity to Redis at most every few seconds."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys):
        self.redis = client
        self.keys = keys
        self._written: dict[int, float] = {}
        self._wake_asked: dict[int, float] = {}

    async def touch(self, space_id: int) -> None:
        now = time.time()
        if now - self._written.get(space_id, 0.0) < WRITE_EVERY:
            return
        self._written[space_id] = now
        try:
            await self.redis.zadd(self.keys.activity, {str(space_id): now})
        except redis.RedisError as exc:
            log.warning("cannot record activity: %s", exc)

    async def request_wake(self, space_id: int) -> None:
        """Ask the controller to wake a sleeping space (once every few seconds per space)."""
        now = time.time()
        if now - self._wake_asked.get(space_id, 0.0) < WAKE_EVERY:
            return
        self._wake_asked[space_id] = now
        await self.touch(space_id)
        event = Event(type=EventType.WAKE_REQUESTED, space_id=space_id, build_id=0)
        await self.redis.xadd(self.keys.events, event.to_fields(), maxlen=100_000, approximate=True)
