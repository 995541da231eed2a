"""The controller process's ASGI app: the hub-compatible API, git smart HTTP, the web UI and admin,
behind the edge proxy; and the controller's background loops (reports, reconciler)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import formatdate

import aiohttp
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spacehub import __version__
from spacehub.api.routers import (
    admin,
    buckets,
    discussions,
    files,
    git,
    inference,
    internal,
    oauth,
    parquet,
    repos,
    spaces,
    users,
    viewer,
)
from spacehub.config import Settings
from spacehub.controller.accounts import ensure_admin
from spacehub.controller.context import ControllerContext
from spacehub.controller.deploys import seal_clear_secrets
from spacehub.controller.events import consume_events
from spacehub.controller.leader import Leadership
from spacehub.controller.reconciler import Reconciler
from spacehub.http.errors import install_error_handlers
from spacehub.http.schema import install_schema
from spacehub.state.activity import Activity
from spacehub.state.connection import connect_async
from spacehub.web import account as web_account
from spacehub.web import admin as web_admin
from spacehub.web import browse as web_browse
from spacehub.web import buckets as web_buckets
from spacehub.web import community as web_community
from spacehub.web import manage as web_manage
from spacehub.web import oauth as web_oauth
from spacehub.web.deps import error_page
from spacehub.web.render import STATIC_DIR

log = logging.getLogger(__name__)

DESCRIPTION = """\
spacehub's API. Paths and payloads follow the Hugging Face Hub, so `huggingface_hub`, the `hf` CLI,
`gradio_client` and `git` work against it with `HF_ENDPOINT` set to this server.
Platform-only endpoints live under `/api/admin`. Errors carry `X-Error-Code` and `X-Error-Message`.
"""


class DateHeader:
    """An exact `Date` on every response. uvicorn's own is refreshed once a second and can lag by
    more than that; huggingface_hub's log reader uses `Date` to decide where a replay ends."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_date(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"date" for name, _ in headers):
                    headers.append((b"date", formatdate(time.time(), usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_date)


def start_background(ctx: ControllerContext) -> tuple[threading.Event, list[threading.Thread]]:
    """Apply agents' reports and reconcile desired and actual state while this controller leads,
    until the event is set."""
    stop = threading.Event()
    leadership = Leadership.for_context(ctx)
    reconciler = Reconciler(ctx, ctx.settings.instance_id)
    threads = [
        threading.Thread(target=leadership.run, args=(stop,), name="leadership", daemon=True),
        threading.Thread(
            target=consume_events, args=(ctx, stop, leadership.leading), name="events", daemon=True
        ),
        threading.Thread(
            target=reconciler.run, args=(stop, leadership.leading), name="reconciler", daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    return stop, threads


def create_app(settings: Settings, *, background: bool = True) -> FastAPI:
    """The controller's ASGI app. `background` starts the event consumer and the reconciler."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = ControllerContext.from_settings(settings)
        app.state.ctx = ctx
        app.state.aredis = connect_async(settings.resolved_redis_url)
        # Requests the hub sends to model servers count as visits there, as the edge counts its own.
        app.state.activity = Activity(app.state.aredis, ctx.keys)
        app.state.activity.start()
        # One client for the requests forwarded to model servers (its connections are reused).
        # aiohttp: it adds about half the latency httpx's client does.
        timeout = aiohttp.ClientTimeout(sock_connect=10, sock_read=300)
        app.state.model_servers = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        with ctx.session() as session:
            if settings.admin_token is not None:
                ensure_admin(session, settings.admin_token.get_secret_value())
            if sealed := seal_clear_secrets(ctx, session):
                log.info("encrypted %d space secrets an older release stored in the clear", sealed)
        stop, threads = start_background(ctx) if background else (threading.Event(), [])
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
            await app.state.model_servers.close()
            await app.state.activity.close()
            await app.state.aredis.aclose()
            ctx.redis.close()

    app = FastAPI(
        title="spacehub",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    routers = (
        buckets,
        users,
        repos,
        spaces,
        files,
        discussions,
        admin,
        internal,
        git,
        viewer,
        parquet,
        oauth,
        inference,
    )
    api_routes = [
        route for module in routers for route in module.router.routes if isinstance(route, APIRoute)
    ]
    install_error_handlers(app, error_page, api_routes)
    install_schema(app)
    app.add_middleware(DateHeader)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for module in routers:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # The pages come last: their catch-all paths (/{user}, /{owner}/{name} for models) must not
    # shadow any API or git route.
    web_modules = (web_account, web_oauth, web_manage, web_admin, web_community, web_buckets, web_browse)
    for web_module in web_modules:
        app.include_router(web_module.router)

    return app
