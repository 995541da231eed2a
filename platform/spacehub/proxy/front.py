"""HAProxy on the public port with the relay beside it, kept in step with the route table,
restarted if it dies, and what they see of visitors turned into the spaces' activity."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from spacehub.config import Settings
from spacehub.proxy.datapath import DataPath
from spacehub.proxy.relay import BACKLOG, WebSocketRelay
from spacehub.proxy.routes import RouteCache
from spacehub.state.activity import WRITE_EVERY, Activity
from spacehub.state.routes import SpaceRecord

log = logging.getLogger(__name__)


class HaproxyFront:
    """HAProxy and the WebSocket relay in front of the activator."""

    def __init__(
        self,
        settings: Settings,
        routes: RouteCache,
        activity: Activity,
        on_message: Callable[[SpaceRecord], Awaitable[None]],
    ):
        run_dir = settings.resolved_data_dir / "edge" / str(settings.port)
        self.data_path = DataPath(settings, run_dir)
        self.relay = WebSocketRelay(
            self.data_path.relay_socket,
            self.record_for_host,
            self.message_seen,
            settings.upstream_connect_timeout,
        )
        self.apps_suffix = "." + settings.resolved_apps_domain
        self.routes = routes
        self.activity = activity
        self.on_message = on_message
        self.counted: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False

    async def listen(self, runner: web.BaseRunner) -> None:
        """The activator behind HAProxy: `runner` on a unix socket only its user may open."""
        socket = self.data_path.activator_socket
        socket.parent.mkdir(parents=True, exist_ok=True)
        socket.unlink(missing_ok=True)
        await web.UnixSite(runner, str(socket), backlog=BACKLOG).start()
        socket.chmod(0o600)

    async def start(self) -> None:
        """Start the relay and HAProxy on the current routes; follow their changes and HAProxy's health."""
        await self.relay.start()
        await self.data_path.start(dict(self.routes.by_subdomain))
        self.routes.listeners.append(self.on_change)
        self.spawn(self.count_visits())
        self.tasks.add(self.data_path.watch(self.on_exit))

    def spawn(self, work: Awaitable[None]) -> None:
        """Run `work` as a task the front keeps until it ends (and cancels on close)."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def record_for_host(self, host: str) -> SpaceRecord | None:
        """The space an app host (without port) names: its subdomain, or its custom domain."""
        if host.endswith(self.apps_suffix):
            return self.routes.lookup(host[: -len(self.apps_suffix)])
        return self.routes.lookup_domain(host)

    def message_seen(self, record: SpaceRecord) -> None:
        """A visitor sent a message through the relay."""
        self.spawn(self.on_message(record))

    async def on_change(self, subdomains: list[str] | None) -> None:
        """Apply route changes (None: all of them) to HAProxy's map."""
        try:
            if subdomains is None:
                await self.data_path.apply_all(dict(self.routes.by_subdomain))
            else:
                await self.data_path.apply({s: self.routes.lookup(s) for s in subdomains})
        except OSError as exc:
            log.warning("cannot update HAProxy's routes (%s); they are rewritten when it restarts", exc)

    def on_exit(self, status: int) -> None:
        """HAProxy exited: start it again, unless the edge is closing."""
        if not self.closing:
            log.error("HAProxy exited with status %s; starting it again", status)
            self.spawn(self.restart())

    async def restart(self) -> None:
        """Start HAProxy again with every route, and watch it again."""
        await asyncio.sleep(0.5)
        self.counted.clear()
        await self.data_path.start(dict(self.routes.by_subdomain))
        self.tasks.add(self.data_path.watch(self.on_exit))

    async def count_visits(self) -> None:
        """Every few seconds: the spaces HAProxy served requests of (or serves one now) had a visit."""
        while True:
            await asyncio.sleep(WRITE_EVERY)
            try:
                visits = await self.data_path.visits()
            except OSError:
                continue
            for host, seen in visits.items():
                record = self.record_for_host(host)
                before, self.counted[host] = self.counted.get(host, 0), seen.requests
                if record is not None and (seen.in_flight or seen.requests != before):
                    await self.activity.touch(record.id, force=True)

    async def close(self) -> None:
        """Stop HAProxy and the relay."""
        self.closing = True
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.data_path.close()
        await self.relay.close()
