"""The proxy's in-memory copy of the route table, kept current through Redis pub/sub.

Lookups never touch Redis; a change message reloads one record, and a lost subscription (Redis
restart) reloads everything, so a proxy restart or a second replica needs only Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio

from spacehub.stages import ERROR_STAGES, Stage
from spacehub.state.keys import Keys
from spacehub.state.routes import SpaceRecord

log = logging.getLogger(__name__)

# Stages from which no upstream comes without someone acting: waiting for one is pointless.
NOT_COMING = ERROR_STAGES | {Stage.PAUSED, Stage.STOPPED, Stage.DELETING}


class RouteCache:
    def __init__(self, client: redis.asyncio.Redis, keys: Keys):
        self.redis = client
        self.keys = keys
        self.by_subdomain: dict[str, SpaceRecord] = {}
        self.by_name: dict[str, str] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    def lookup(self, subdomain: str) -> SpaceRecord | None:
        """The route record of the space at `subdomain` (case-insensitive), if any."""
        return self.by_subdomain.get(subdomain.lower())

    def lookup_name(self, owner: str, name: str) -> SpaceRecord | None:
        """The route record of the space `owner/name` (case-insensitive), if any."""
        subdomain = self.by_name.get(f"{owner}/{name}".lower())
        return self.by_subdomain.get(subdomain) if subdomain else None

    async def start(self) -> None:
        """Start following the route table; waits up to 10 s for the first full load."""
        self._task = asyncio.create_task(self._follow())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout=10)

    async def close(self) -> None:
        """Stop following the route table."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.space_changes)
                    await self.reload_all()
                    self.ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        subdomain = message["data"].decode()
                        if subdomain == "*":
                            await self.reload_all()
                        else:
                            await self.reload(subdomain)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("route table unavailable (%s); retrying", exc)
                await asyncio.sleep(1)

    async def reload_all(self) -> None:
        """Replace the whole copy with the route table as Redis holds it now."""
        members = await self.redis.smembers(self.keys.spaces)
        fresh: dict[str, SpaceRecord] = {}
        for raw in members:
            subdomain = raw.decode()
            record = SpaceRecord.from_hash(subdomain, await self.redis.hgetall(self.keys.space(subdomain)))
            if record is not None:
                fresh[subdomain] = record
        self.by_subdomain = fresh
        self.by_name = {record.name.lower(): sub for sub, record in fresh.items()}

    async def reload(self, subdomain: str) -> None:
        """Reload one space's record (dropping it if it is gone), and wake those waiting for a change."""
        record = SpaceRecord.from_hash(subdomain, await self.redis.hgetall(self.keys.space(subdomain)))
        previous = self.by_subdomain.pop(subdomain, None)
        if previous is not None:
            self.by_name.pop(previous.name.lower(), None)
        if record is not None:
            self.by_subdomain[subdomain] = record
            self.by_name[record.name.lower()] = subdomain
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self, subdomain: str, ready: Callable[[SpaceRecord], bool], timeout: float
    ) -> SpaceRecord | None:
        """The space's record once `ready` says so, or None after `timeout` seconds (or as soon as
        it can no longer be: the space is gone, failed or paused)."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while True:
                record = self.by_subdomain.get(subdomain)
                if record is not None and ready(record):
                    return record
                if record is None or record.stage in NOT_COMING:
                    return None
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)
