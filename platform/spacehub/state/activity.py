"""Counting real use of apps, for idle tiers and sleep: requests and WebSocket messages from
visitors, not the pings and heartbeat streams that clients keep open on their own. A request that
is still being answered (a long prediction, a streamed answer) keeps its space in use."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator

import redis.asyncio

from spacehub.state.commands import Command
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
WRITE_EVERY = 2.0
WAKE_EVERY = 5.0


def is_background(path: str) -> bool:
    """Whether a request to `path` is one that clients send on their own (heartbeats, health), not a visit."""
    path = path.split("?", 1)[0]
    return any(marker in path for marker in BACKGROUND_PATHS)


class Activity:
    """Writes a space's last visit to Redis at most every few seconds, and every few seconds for
    as long as one of its requests is in flight."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys):
        self.redis = client
        self.keys = keys
        self._written: dict[int, float] = {}
        self._wake_asked: dict[int, float] = {}
        self._in_flight: Counter[int] = Counter()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start touching, every few seconds, the spaces with requests in flight."""
        self._task = asyncio.create_task(self._keep_busy_spaces_active())

    async def close(self) -> None:
        """Stop touching the spaces with requests in flight."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def touch(self, space_id: int, *, force: bool = False) -> None:
        """Record a visit of the space (at most one write every WRITE_EVERY seconds, unless `force`)."""
        now = time.time()
        if not force and now - self._written.get(space_id, 0.0) < WRITE_EVERY:
            return
        self._written[space_id] = now
        try:
            await self.redis.zadd(self.keys.activity, {str(space_id): now})
        except redis.RedisError as exc:
            log.warning("cannot record activity: %s", exc)

    @contextlib.contextmanager
    def in_flight(self, space_id: int) -> Iterator[None]:
        """While the block runs, the space counts as in use."""
        self._in_flight[space_id] += 1
        try:
            yield
        finally:
            self._in_flight[space_id] -= 1
            if self._in_flight[space_id] <= 0:
                del self._in_flight[space_id]

    async def _keep_busy_spaces_active(self) -> None:
        while True:
            await asyncio.sleep(WRITE_EVERY)
            for space_id in list(self._in_flight):
                await self.touch(space_id)

    async def send(self, host: str, command: Command) -> None:
        """Ask one host's agent to act on one of its apps (thaw, wake)."""
        try:
            await self.redis.publish(self.keys.host_commands(host), command.to_message())
        except redis.RedisError as exc:
            log.warning("cannot reach host %s: %s", host, exc)

    async def request_wake(self, space_id: int) -> None:
        """Ask the controller to wake a sleeping space (once every few seconds per space); it
        leaves the space to its host when that host wakes it itself."""
        now = time.time()
        if now - self._wake_asked.get(space_id, 0.0) < WAKE_EVERY:
            return
        self._wake_asked[space_id] = now
        await self.touch(space_id)
        event = Event(type=EventType.WAKE_REQUESTED, space_id=space_id, build_id=0)
        await self.redis.xadd(self.keys.events, event.to_fields(), maxlen=100_000, approximate=True)
