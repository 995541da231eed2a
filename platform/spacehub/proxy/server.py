"""The edge proxy: the single public port. Hub requests go to the controller; app requests, by
subdomain or by path, go to the app's container (or, for static spaces, to the hub's file server)."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aiohttp
import uvloop
from aiohttp import web
from yarl import URL

from spacehub.addresses import PATH_ROUTING_PREFIX
from spacehub.config import Settings
from spacehub.processes import allow_all_open_files
from spacehub.proxy import pages
from spacehub.proxy.auth import CREDENTIAL_HEADERS, AppAccess, hostname, without_credentials
from spacehub.proxy.controllers import Controllers
from spacehub.proxy.datapath import haproxy_available
from spacehub.proxy.forward import BodyTooLarge, Upstream, forward_http, forward_websocket
from spacehub.proxy.front import HaproxyFront
from spacehub.proxy.routes import NOT_COMING, RouteCache
from spacehub.stages import IN_PROGRESS_STAGES, Stage, Tier
from spacehub.state.activity import Activity, is_background
from spacehub.state.commands import Action, Command
from spacehub.state.connection import connect_async
from spacehub.state.keys import Keys
from spacehub.state.routes import SpaceRecord

log = logging.getLogger(__name__)

INTERNAL_PREFIX = "/api/internal"
# On every app's origin: its stage, for the pages that wait for it (the app never sees this path).
STATUS_PATH = "/.spacehub/status"
# Stages in which an API request is worth holding: the app is on its way.
WAITABLE = IN_PROGRESS_STAGES | {Stage.SLEEPING, Stage.RUNNING}
NUDGE_SECONDS = 1.0
# The edge is no forward proxy (CONNECT), and echoes nothing back (TRACE).
REFUSED_METHODS = frozenset({"CONNECT", "TRACE"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORWARDED_BY_HAPROXY = ("X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto")
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
VALID_HOST = re.compile(r"^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
# While a request is held, an interim answer this often keeps the client's read timeout from
# running out (gradio_client's is 5 s; Go's client gives up after five interim answers).
INTERIM_SECONDS = 3.0
INTERIM_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class AppRequest:
    """A request for an app: its space, and the path the app should see."""

    record: SpaceRecord | None
    path: str
    prefix: str


class EdgeProxy:
    def __init__(self, settings: Settings, routes: RouteCache, *, behind_haproxy: bool = False):
        self.settings = settings
        self.routes = routes
        self.behind_haproxy = behind_haproxy
        self.apps_suffix = "." + settings.resolved_apps_domain
        self.controllers = Controllers(
            settings.controllers_from(
                f"http://{_connect_host(settings.controller_host)}:{settings.resolved_controller_port}"
            )
        )
        self.session: aiohttp.ClientSession | None = None
        self.access = AppAccess(settings, self.controllers)
        self.activity = Activity(routes.redis, routes.keys)

    async def start(self) -> None:
        """Open the upstream connection pool (no cookies, no decompression) and start recording activity."""
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.settings.upstream_connect_timeout),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.activity.start()

    async def close(self) -> None:
        """Stop recording activity and close the connection pool."""
        await self.activity.close()
        if self.session is not None:
            await self.session.close()

    # Routing ------------------------------------------------------------------------------------

    def app_request(self, request: web.BaseRequest) -> AppRequest | None:
        """The app this request is for, or None for the hub."""
        if self.settings.routing == "subdomain":
            host = hostname(request.host)
            if (custom := self.routes.lookup_domain(host)) is not None:
                return AppRequest(custom, request.raw_path, "")
            if host.endswith(self.apps_suffix):
                return AppRequest(self.routes.lookup(host[: -len(self.apps_suffix)]), request.raw_path, "")
            return None
        path, _, query = request.raw_path.partition("?")
        if not path.startswith(PATH_ROUTING_PREFIX + "/"):
            return None
        segments = path[len(PATH_ROUTING_PREFIX) + 1 :].split("/", 2)
        if len(segments) < 2 or not segments[0] or not segments[1]:
            return None
        owner, name = segments[0], segments[1]
        rest = "/" + segments[2] if len(segments) == 3 else ""
        if rest and query:
            rest += "?" + query
        return AppRequest(self.routes.lookup_name(owner, name), rest, f"{PATH_ROUTING_PREFIX}/{owner}/{name}")

    # Handling -----------------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one request: the hub's, or an app's; 413 when the body is over the limit, 400 for a
        target or Host that routes nowhere, 405 for methods the edge does not serve."""
        if request.method in REFUSED_METHODS:
            return pages.method_not_allowed(request, ALLOWED_METHODS)
        try:
            request = origin_form(request)
        except ValueError as exc:
            return pages.bad_request(request, str(exc))
        app = self.app_request(request)
        try:
            if app is None:
                return await self.to_hub(request)
            return await self.to_app(request, app)
        except BodyTooLarge:
            return pages.too_large(request, self.settings.max_body_size)

    async def to_hub(self, request: web.BaseRequest) -> web.StreamResponse:
        """Forward a request to the controller; its internal API is not reachable from outside."""
        if request.path.startswith(INTERNAL_PREFIX):
            return pages.render(request, 404, "Not found", "", "")
        headers = self.forwarding_headers(request)
        for controller in self.controllers.in_order():
            try:
                response = await self.forward(request, Upstream(controller, request.raw_path, headers))
            except aiohttp.ClientConnectorError:
                self.controllers.refused(controller)  # nothing was sent: the next one may take it
                continue
            except aiohttp.ClientError:
                self.controllers.refused(controller)
                if request.method in SAFE_METHODS and not request.body_exists:
                    continue  # it died holding the request; one without effects may be asked again
                break
            self.controllers.answered(controller)
            return response
        return pages.render(request, 503, "The hub is restarting", "", "Retry in a moment.", refresh=True)

    async def to_app(self, request: web.BaseRequest, app: AppRequest) -> web.StreamResponse:
        """Serve an app request: access check, status probe, static files, or the app (woken if need be)."""
        record = app.record
        if record is None:
            return pages.no_such_space(request)
        if app.prefix and not app.path:
            # /app/owner/name -> /app/owner/name/ so that the app's relative URLs resolve under it.
            raise web.HTTPPermanentRedirect(location=app.prefix + "/")
        assert self.session is not None
        decision = await self.access.check(request, record, app.prefix, self.session)
        if not decision.allowed:
            return pages.no_such_space(request)  # the same answer as for a space that does not exist
        extra = (("Set-Cookie", decision.set_cookie),) if decision.set_cookie else ()
        if app.path.split("?", 1)[0] == STATUS_PATH:
            return web.json_response(
                {
                    "stage": record.stage.value,
                    "message": record.message,
                    "ready": bool(record.upstream or record.static_sha),
                },
                headers={"Cache-Control": "no-store"},
            )
        if record.static_sha:
            return await self.static(request, record, app, extra)
        if not is_background(app.path):
            await self.activity.touch(record.id)
        if not can_answer(record):
            awake = await self.awaken(request, record, app)
            if isinstance(awake, web.StreamResponse):
                return awake
            record = awake
        return await self.forward_to_app(request, app, record, extra)

    async def forward_to_app(
        self,
        request: web.BaseRequest,
        app: AppRequest,
        record: SpaceRecord,
        extra: tuple[tuple[str, str], ...],
    ) -> web.StreamResponse:
        """Forward a request to the app without the visitor's credentials; Streamlit apps keep the prefix."""
        keep_prefix = record.sdk == "streamlit"
        path, cookie = without_credentials(
            request, (app.prefix + app.path) if keep_prefix else (app.path or "/")
        )
        headers = self.forwarding_headers(request)
        if app.prefix:
            headers["X-Forwarded-Prefix"] = app.prefix
        if cookie:
            headers["Cookie"] = cookie
        upstream = Upstream(
            f"http://{record.upstream}",
            path,
            headers,
            remove_headers=CREDENTIAL_HEADERS | {"cookie"},
            response_headers=extra + self.framing(record),
            override_headers=tuple(record.headers.items()),
        )
        try:
            if is_background(app.path):
                return await self.forward(request, upstream, record)
            with self.activity.in_flight(record.id):
                return await self.forward(request, upstream, record)
        except aiohttp.ClientConnectionError as exc:
            log.info("app %s at %s did not answer: %s", record.name, record.upstream, exc)
            return pages.upstream_failed(request, record.name, self.settings.resolved_public_url)

    def framing(self, record: SpaceRecord) -> tuple[tuple[str, str], ...]:
        """For an app whose owner disabled embedding, a policy that lets only the hub's own pages
        frame it: a second Content-Security-Policy, which browsers enforce beside the app's own."""
        if record.embeddable:
            return ()
        hub = urlsplit(self.settings.resolved_public_url)
        return (("Content-Security-Policy", f"frame-ancestors 'self' {hub.scheme}://{hub.netloc}"),)

    async def awaken(
        self, request: web.BaseRequest, record: SpaceRecord, app: AppRequest
    ) -> SpaceRecord | web.StreamResponse:
        """Get the app to answer: a frozen one is thawed while the request waits (milliseconds);
        for one that sleeps or starts, browsers get the waking page and API clients (gradio_client
        ...) are held until it answers."""
        await self.nudge(record)
        frozen = bool(record.upstream) and record.tier == Tier.FROZEN
        hub_url = self.settings.resolved_public_url
        if not frozen and (pages.wants_html(request) or record.stage not in WAITABLE):
            return pages.space_unavailable(request, record, hub_url, status_path=app.prefix + STATUS_PATH)
        awake = await self.hold(request, record)
        if awake is None:
            latest = self.routes.lookup(record.subdomain) or record
            return pages.space_unavailable(request, latest, hub_url)
        return awake

    async def nudge(self, record: SpaceRecord) -> None:
        """Ask whoever can make the app answer: its host's agent (thaw, wake), without waiting for
        the controller; and the controller, for a sleeping space its host may not wake."""
        if record.tier == Tier.FROZEN and record.host and record.build:
            await self.activity.send(record.host, Command(Action.THAW, record.subdomain, record.build))
        elif not record.upstream and Stage.SLEEPING in (record.stage, record.tier):
            if record.tier == Tier.SLEEPING and record.host and record.build:
                await self.activity.send(record.host, Command(Action.WAKE, record.subdomain, record.build))
            await self.activity.request_wake(record.id)

    async def hold(self, request: web.BaseRequest, record: SpaceRecord) -> SpaceRecord | None:
        """The space's record once its app can answer, or None after the wake timeout (or as soon
        as it cannot: an error, a pause). The host is nudged again every NUDGE_SECONDS (a command
        lost while its agent restarted costs one repetition). Meanwhile HTTP/1.1 clients get a
        `100 Continue` every INTERIM_SECONDS: they must skip interim answers (RFC 9110, 15.2), and
        each one restarts their read timeout, so that a model that takes a minute to load does not
        fail the request that woke it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.wake_timeout
        next_interim = loop.time() + INTERIM_SECONDS
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            awake = await self.routes.wait_for(record.subdomain, can_answer, min(NUDGE_SECONDS, remaining))
            if awake is not None:
                return awake
            latest = self.routes.lookup(record.subdomain)
            if latest is None or latest.stage in NOT_COMING:
                return None
            await self.nudge(latest)
            if loop.time() >= next_interim and request.version >= aiohttp.HttpVersion11:
                await request.writer.write(INTERIM_RESPONSE)
                next_interim = loop.time() + INTERIM_SECONDS

    async def static(
        self,
        request: web.BaseRequest,
        record: SpaceRecord,
        app: AppRequest,
        extra: tuple[tuple[str, str], ...],
    ) -> web.StreamResponse:
        """Serve a static space's file at its commit through the controller's file server (GET, HEAD)."""
        if request.method not in ("GET", "HEAD"):
            return pages.render(
                request, 405, "Method not allowed", record.name, "Static spaces serve files only."
            )
        file_path = app.path.split("?", 1)[0].lstrip("/")
        headers = {"Authorization": f"Bearer {self.settings.resolved_internal_token}"}
        upstream = Upstream(
            self.controllers.first(),
            f"{INTERNAL_PREFIX}/static/{record.id}/{record.static_sha}/{quote(file_path, safe='/%')}",
            headers,
            remove_headers=CREDENTIAL_HEADERS | {"cookie"},
            response_headers=extra + self.framing(record),
            override_headers=tuple(record.headers.items()),
        )
        return await self.forward(request, upstream)

    async def forward(
        self, request: web.BaseRequest, upstream: Upstream, record: SpaceRecord | None = None
    ) -> web.StreamResponse:
        """Forward over HTTP, or as a WebSocket whose messages count as visits (and thaw a frozen app)."""
        assert self.session is not None
        if request.headers.get("Upgrade", "").lower() == "websocket":

            async def on_client_message() -> None:
                if record is not None:
                    await self.message_seen(record)

            return await forward_websocket(request, self.session, upstream, on_client_message)
        return await forward_http(request, self.session, upstream, self.settings.max_body_size)

    async def message_seen(self, record: SpaceRecord) -> None:
        """A visitor sent a WebSocket message to the space's app: a visit, which thaws it if it froze
        meanwhile (what the visitor sent waits in the socket)."""
        await self.activity.touch(record.id)
        latest = self.routes.lookup(record.subdomain)
        if latest is not None and latest.tier == Tier.FROZEN:
            await self.nudge(latest)

    def forwarding_headers(self, request: web.BaseRequest) -> dict[str, str]:
        """The X-Forwarded headers for an upstream, from this request (never the client's own: behind
        HAProxy, those it set, having dropped the client's)."""
        if self.behind_haproxy:
            return {name: request.headers.get(name, "") for name in FORWARDED_BY_HAPROXY}
        return {
            "X-Forwarded-For": request.remote or "",
            "X-Forwarded-Host": request.host,
            "X-Forwarded-Proto": self.settings.public_scheme,
        }


def origin_form(request: web.BaseRequest) -> web.BaseRequest:
    """The request with a path as its target and a valid Host: one in absolute form
    (`GET http://host/path`, which servers must accept) is turned into that; anything else that
    is not a path, or a Host that is no host name, is refused (ValueError says why)."""
    target = request.raw_path
    if not target.startswith("/"):
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the request target must be a path")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = request.clone(
            rel_url=URL(path, encoded=True), headers={**request.headers, "Host": parts.netloc}
        )
    if not VALID_HOST.match(request.host or ""):
        raise ValueError("the Host header is not a host name (with an optional port)")
    return request


def can_answer(record: SpaceRecord) -> bool:
    """Whether the space's app can take a request now (it has an address and is not frozen)."""
    return bool(record.upstream) and record.tier != Tier.FROZEN


def _connect_host(listen_host: str) -> str:
    return "127.0.0.1" if listen_host in ("0.0.0.0", "", "::") else listen_host


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run the edge until `stop` is set: HAProxy on the public port with the Python edge behind it
    as the activator, or the Python edge alone (settings: `edge_data_path`)."""
    open_files = allow_all_open_files()
    client = connect_async(settings.resolved_redis_url)
    routes = RouteCache(client, Keys(settings.namespace))
    await routes.start()
    use_haproxy = settings.edge_data_path == "haproxy" or (
        settings.edge_data_path == "auto" and haproxy_available()
    )
    proxy = EdgeProxy(settings, routes, behind_haproxy=use_haproxy)
    await proxy.start()
    server = web.Server(proxy.handle, handler_cancellation=True)
    runner = web.ServerRunner(server, shutdown_timeout=5)
    await runner.setup()
    data_path: HaproxyFront | None = None
    try:
        if use_haproxy:
            data_path = HaproxyFront(settings, routes, proxy.activity, proxy.message_seen)
            await data_path.listen(runner)
            await data_path.start()
        else:
            await listen_publicly(runner, settings)
        log.info(
            "edge on port %s (%s routing, %s; up to %s open files)",
            settings.port,
            settings.routing,
            "HAProxy in front of the activator" if use_haproxy else "Python",
            open_files,
        )
        await stop.wait()
    finally:
        if data_path is not None:
            await data_path.close()
        await runner.cleanup()
        await proxy.close()
        await routes.close()
        await client.aclose()


async def listen_publicly(runner: web.ServerRunner, settings: Settings) -> None:
    """The Python edge on the public port, on every listen address it can bind."""
    sites = 0
    for host in settings.listen_hosts:
        try:
            await web.TCPSite(runner, host, settings.port, reuse_address=True).start()
            sites += 1
        except OSError as exc:
            log.warning("cannot listen on %s:%s (%s)", host, settings.port, exc)
    if not sites:
        raise SystemExit(f"the proxy could not listen on port {settings.port}")


def run_proxy(settings: Settings) -> None:
    """Run the edge proxy until SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(settings, stop)

    # uvloop (libuv): the relay splices WebSockets through asyncio transports, which it makes
    # about twice as cheap as the standard event loop.
    uvloop.run(main())
