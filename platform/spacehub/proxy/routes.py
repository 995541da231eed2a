"""The proxy's in-memory copy of the route table, kept current through Redis pub/sub.

Lookups never touch Redis; change messages reload their records (those that arrived together in
one round trip), and a lost subscription (Redis restart) reloads everything, so a proxy restart or
a second replica needs only Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

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
        self.by_domain: dict[str, str] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._pending: dict[str, None] = {}
        self._has_pending = asyncio.Event()
        # Called after each change: with the subdomains that changed, or None when all were reloaded.
        self.listeners: list[Callable[[list[str] | None], Awaitable[None]]] = []

    def lookup(self, subdomain: str) -> SpaceRecord | None:
        """The route record of the space at `subdomain` (case-insensitive), if any."""
        return self.by_subdomain.get(subdomain.lower())

    def lookup_domain(self, host: str) -> SpaceRecord | None:
        """The route record of the space whose custom domain `host` is, if any."""
        subdomain = self.by_domain.get(host.lower())
        return self.by_subdomain.get(subdomain) if subdomain else None

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
            applying: asyncio.Task[None] | None = None
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.space_changes)
                    await self.reload_all()
                    self.ready.set()
                    applying = asyncio.create_task(self._apply_changes())
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._pending[message["data"].decode()] = None
                            self._has_pending.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("route table unavailable (%s); retrying", exc)
                await asyncio.sleep(1)
            finally:
                if applying is not None:
                    applying.cancel()

    async def _apply_changes(self) -> None:
        """Reload the spaces named by change messages: all those that arrived while the previous
        ones were being reloaded, in one round trip."""
        while True:
            await self._has_pending.wait()
            self._has_pending.clear()
            changed, self._pending = list(self._pending), {}
            try:
                if "*" in changed:
                    await self.reload_all()
                else:
                    await self.reload(changed)
            except redis.RedisError as exc:
                log.warning("cannot reload routes (%s); retrying", exc)
                self._pending.update(dict.fromkeys(changed))
                self._has_pending.set()
                await asyncio.sleep(1)
            except Exception:
                log.exception("applying route changes failed")

    async def reload_all(self) -> None:
        """Replace the whole copy with the route table as Redis holds it now (one round trip)."""
        subdomains = sorted(raw.decode() for raw in await self.redis.smembers(self.keys.spaces))
        pipe = self.redis.pipeline(transaction=False)
        for subdomain in subdomains:
            pipe.hgetall(self.keys.space(subdomain))
        hashes = await pipe.execute()
        fresh: dict[str, SpaceRecord] = {}
        for subdomain, raw in zip(subdomains, hashes, strict=True):
            record = SpaceRecord.from_hash(subdomain, raw)
            if record is not None:
                fresh[subdomain] = record
        self.by_subdomain = fresh
        self.by_name = {record.name.lower(): sub for sub, record in fresh.items()}
        self.by_domain = {record.domain: sub for sub, record in fresh.items() if record.domain}
        for listener in self.listeners:
            await listener(None)

    async def reload(self, subdomains: list[str]) -> None:
        """Reload some spaces' records (dropping those that are gone) in one round trip, and wake
        those waiting for a change."""
        pipe = self.redis.pipeline(transaction=False)
        for subdomain in subdomains:
            pipe.hgetall(self.keys.space(subdomain))
        for subdomain, raw in zip(subdomains, await pipe.execute(), strict=True):
            record = SpaceRecord.from_hash(subdomain, raw)
            previous = self.by_subdomain.pop(subdomain, None)
            if previous is not None:
                self.by_name.pop(previous.name.lower(), None)
                if self.by_domain.get(previous.domain) == subdomain:
                    del self.by_domain[previous.domain]
            if record is not None:
                self.by_subdomain[subdomain] = record
                self.by_name[record.name.lower()] = subdomain
                if record.domain:
                    self.by_domain[record.domain] = subdomain
        for listener in self.listeners:
            await listener(subdomains)
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
