"""Space endpoints of the Hub API: runtime, hardware, sleep time, pause, restart, secrets,
variables, duplicate, signed app access and logs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from spacehub.controller.access import APP_LINK_SECONDS, app_link, can_write
from spacehub.controller.context import ControllerContext
from spacehub.controller.domains import domain_status, remove_custom_domain, set_custom_domain
from spacehub.controller.logs import follow_log, log_source
from spacehub.controller.repos import get_readable_repo, get_space_for_app
from spacehub.controller.serializers import secrets_json, space_runtime, variables_json
from spacehub.controller.space_settings import (
    change_hardware,
    check_hardware,
    delete_environment,
    put_environment,
)
from spacehub.controller.spaces import pause, restart, set_sleep_time
from spacehub.controller.volumes import delete_volumes, set_volumes
from spacehub.db.models import RepoType, Space
from spacehub.errors import Forbidden, RepoNotFound, Unsupported
from spacehub.http.deps import CtxDep, PrincipalDep, SessionDep, UserDep, request_principal
from spacehub.http.urls import public_base_url, space_app_url

router = APIRouter(tags=["spaces"])

KEEPALIVE = b"data: \n\n"


def readable_space(session: Any, principal: Any, owner: str, name: str) -> Space:
    """The space `owner/name` if `principal` may read it; RepoNotFound otherwise, or for a non-space."""
    repo = get_readable_repo(session, principal, RepoType.SPACE, owner, name)
    if repo.space is None:
        raise RepoNotFound(f"Repository {owner}/{name} not found")
    return repo.space


def get_readable_space(owner: str, name: str, session: SessionDep, principal: PrincipalDep) -> Space:
    """The space named in the path, if the caller may read it (a dependency)."""
    return readable_space(session, principal, owner, name)


def get_writable_space(owner: str, name: str, session: SessionDep, principal: UserDep) -> Space:
    """The space named in the path, if the caller may write to it (a dependency); Forbidden otherwise."""
    space = readable_space(session, principal, owner, name)
    if not can_write(session, principal, space.repo):
        raise Forbidden(f"you need a write token with access to {space.repo.full_name}")
    return space


ReadableSpace = Annotated[Space, Depends(get_readable_space)]


def get_app_space(owner: str, name: str, session: SessionDep, principal: PrincipalDep) -> Space:
    """The space named in the path, if the caller may open its app: may read it, or it is
    protected (a dependency)."""
    space = get_space_for_app(session, principal, owner, name).space
    if space is None:
        raise RepoNotFound(f"Repository {owner}/{name} not found")
    return space


AppSpace = Annotated[Space, Depends(get_app_space)]
WritableSpace = Annotated[Space, Depends(get_writable_space)]


def runtime_of(ctx: ControllerContext, space: Space, request: Request) -> dict[str, Any]:
    """The space's `runtime` object, its domain the app's URL as seen from this request's hub URL."""
    return space_runtime(ctx, space, space_app_url(ctx.settings, space, public_base_url(request)))


@router.get("/api/spaces/hardware", summary="Hardware flavors")
def hardware_flavors(ctx: CtxDep) -> list[dict[str, Any]]:
    """The flavors this installation offers, in the Hub's shape."""
    return [flavor.public() for flavor in ctx.flavors.values()]


@router.get("/api/spaces/{owner}/{name}/runtime", summary="Stage, hardware and sleep time of a space")
def runtime(space: AppSpace, request: Request, ctx: CtxDep) -> dict[str, Any]:
    """The space's stage, current and requested hardware, sleep time, running commit and app domain."""
    return runtime_of(ctx, space, request)


@router.get("/api/spaces/{owner}/{name}/host", summary="The app's URL")
def host(space: AppSpace, request: Request, ctx: CtxDep) -> dict[str, Any]:
    """The URL of the space's app and its subdomain."""
    return {
        "host": space_app_url(ctx.settings, space, public_base_url(request)),
        "subdomain": space.subdomain,
    }


class HardwareRequest(BaseModel):
    flavor: str
    sleepTimeSeconds: int | None = None


@router.post("/api/spaces/{owner}/{name}/hardware", summary="Change hardware (restarts the app)")
def request_hardware(
    body: HardwareRequest, space: WritableSpace, request: Request, ctx: CtxDep, session: SessionDep
) -> dict[str, Any]:
    """Move the space to another hardware flavor (and optionally set its sleep time); returns its runtime."""
    check_hardware(ctx, body.flavor)
    if body.sleepTimeSeconds is not None:
        set_sleep_time(ctx, space, body.sleepTimeSeconds)
    change_hardware(ctx, session, space, body.flavor)
    return runtime_of(ctx, space, request)


class SleepTimeRequest(BaseModel):
    seconds: int


@router.post("/api/spaces/{owner}/{name}/sleeptime", summary="Idle time before the space sleeps")
def sleep_time(body: SleepTimeRequest, space: WritableSpace, request: Request, ctx: CtxDep) -> dict[str, Any]:
    """Set how long the space may go without visitors before it sleeps (-1: never); returns its runtime."""
    set_sleep_time(ctx, space, body.seconds)
    return runtime_of(ctx, space, request)


class CustomDomainRequest(BaseModel):
    domain: str


class CustomDomain(BaseModel):
    """A space's custom domain: `READY` once it resolves to the hub, `PENDING` (and why) before."""

    domain: str | None
    stage: Literal["PENDING", "READY"] | None
    message: str | None


@router.get(
    "/api/spaces/{owner}/{name}/custom-domain", response_model=CustomDomain, summary="The app's custom domain"
)
def get_custom_domain(space: ReadableSpace, ctx: CtxDep) -> CustomDomain:
    """The domain the app is served at besides its subdomain, and whether it reaches the hub yet."""
    if space.custom_domain is None:
        return CustomDomain(domain=None, stage=None, message=None)
    return CustomDomain(**asdict(domain_status(ctx, space.custom_domain)))


@router.put(
    "/api/spaces/{owner}/{name}/custom-domain",
    response_model=CustomDomain,
    summary="Serve the app at a domain",
)
def put_custom_domain(
    body: CustomDomainRequest, space: WritableSpace, ctx: CtxDep, session: SessionDep
) -> CustomDomain:
    """Serve the app at `domain` too (public and protected spaces, subdomain routing); 409 when
    another space has it. It stays `PENDING` until the domain resolves to the hub."""
    return CustomDomain(**asdict(set_custom_domain(ctx, session, space, body.domain)))


@router.delete("/api/spaces/{owner}/{name}/custom-domain", status_code=204, summary="Drop the custom domain")
def delete_custom_domain(space: WritableSpace, ctx: CtxDep) -> None:
    """Stop serving the app at its custom domain."""
    remove_custom_domain(ctx, space)


class VolumesRequest(BaseModel):
    volumes: list[dict[str, Any]]


@router.put("/api/spaces/{owner}/{name}/volumes", summary="Mount buckets and repositories (restarts the app)")
def put_volumes(
    body: VolumesRequest,
    space: WritableSpace,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: UserDep,
) -> dict[str, Any]:
    """Mount exactly these volumes in the app's container: buckets (read-write unless `readOnly`)
    and model, dataset or space repositories (read-only, at `revision`, default `main`), each at its
    `mountPath`. The app restarts with them; returns the space's runtime."""
    set_volumes(ctx, session, principal, space, body.volumes)
    return runtime_of(ctx, space, request)


@router.delete("/api/spaces/{owner}/{name}/volumes", summary="Unmount every volume (restarts the app)")
def remove_volumes(
    space: WritableSpace, request: Request, ctx: CtxDep, session: SessionDep
) -> dict[str, Any]:
    """Mount nothing from now on (the buckets and their files stay); 400 when nothing is mounted."""
    delete_volumes(ctx, session, space)
    return runtime_of(ctx, space, request)


@router.post("/api/spaces/{owner}/{name}/pause", summary="Stop the app until restarted")
def pause_space(space: WritableSpace, request: Request, ctx: CtxDep, session: SessionDep) -> dict[str, Any]:
    """Stop the space's app until its owner restarts it; visits do not wake it meanwhile."""
    pause(ctx, session, space)
    return runtime_of(ctx, space, request)


@router.post("/api/spaces/{owner}/{name}/restart", summary="Restart (factory=true: rebuild without cache)")
def restart_space(
    space: WritableSpace, request: Request, ctx: CtxDep, session: SessionDep, factory: bool = False
) -> dict[str, Any]:
    """Deploy the space's commit again, unpausing it; `factory=true` rebuilds without the build cache."""
    restart(ctx, session, space, factory=factory)
    return runtime_of(ctx, space, request)


class EnvEntry(BaseModel):
    key: str
    value: str = ""
    description: str | None = None


class EnvKey(BaseModel):
    key: str


@router.get("/api/spaces/{owner}/{name}/secrets", summary="Secret names (never their values)")
def list_secrets(space: WritableSpace, session: SessionDep) -> dict[str, Any]:
    """The space's secrets: names, descriptions and update times, never their values."""
    return secrets_json(session, space)


@router.post("/api/spaces/{owner}/{name}/secrets", summary="Add or update a secret (restarts the app)")
def add_secret(body: EnvEntry, space: WritableSpace, ctx: CtxDep, session: SessionDep) -> dict[str, Any]:
    """Add a secret to the space or change its value; the app restarts with it."""
    put_environment(ctx, session, space, "secrets", body.key, body.value, body.description)
    return {}


@router.delete("/api/spaces/{owner}/{name}/secrets", summary="Delete a secret (restarts the app)")
def delete_secret(body: EnvKey, space: WritableSpace, ctx: CtxDep, session: SessionDep) -> dict[str, Any]:
    """Remove a secret from the space; the app restarts without it."""
    delete_environment(ctx, session, space, "secrets", body.key)
    return {}


@router.get("/api/spaces/{owner}/{name}/variables", summary="Variables")
def list_variables(space: ReadableSpace, session: SessionDep) -> dict[str, Any]:
    """The space's variables, with their values, descriptions and update times."""
    return variables_json(session, space)


@router.post("/api/spaces/{owner}/{name}/variables", summary="Add or update a variable (restarts the app)")
def add_variable(body: EnvEntry, space: WritableSpace, ctx: CtxDep, session: SessionDep) -> dict[str, Any]:
    """Add a variable to the space or change its value; the app restarts with it. Returns the variables."""
    put_environment(ctx, session, space, "variables", body.key, body.value, body.description)
    return variables_json(session, space)


@router.delete("/api/spaces/{owner}/{name}/variables", summary="Delete a variable (restarts the app)")
def delete_variable(body: EnvKey, space: WritableSpace, ctx: CtxDep, session: SessionDep) -> dict[str, Any]:
    """Remove a variable from the space; the app restarts without it. Returns the variables left."""
    delete_environment(ctx, session, space, "variables", body.key)
    return variables_json(session, space)


@router.get("/api/spaces/{owner}/{name}/jwt", summary="A short-lived credential to open the app")
def app_token(
    space: ReadableSpace,
    ctx: CtxDep,
    principal: PrincipalDep,
    expires_in: int = Query(APP_LINK_SECONDS, ge=60, le=APP_LINK_SECONDS),
) -> dict[str, Any]:
    """Signed access to this space's app (the `__sign` query parameter), so that a browser opens a
    private app without the user's token ever reaching the app."""
    token, exp = app_link(ctx.settings, principal, space.repo, expires_in)
    return {"token": token, "accessToken": token, "exp": exp}


def _add_unsupported(feature: str) -> None:
    @router.api_route(
        f"/api/spaces/{{owner}}/{{name}}/{feature}",
        methods=["GET", "POST", "PUT", "DELETE"],
        summary=f"{feature}: not offered (400)",
        name=f"unsupported_{feature}",
    )
    def unsupported(space: ReadableSpace) -> None:
        raise Unsupported(f"{feature} is a Hugging Face feature spacehub does not offer")


for _feature in ("dev-mode", "storage", "replicas"):
    _add_unsupported(_feature)


# Logs --------------------------------------------------------------------------------------------


def sse_event(text: str, timestamp: str) -> bytes:
    """One log line as the Hub's log endpoints send it."""
    payload = json.dumps({"data": text + "\n", "timestamp": timestamp})
    return f"data: {payload}\n\n".encode()


def _log_source(
    ctx: ControllerContext, request: Request, owner: str, name: str, kind: str
) -> tuple[str, int | None]:
    """(Redis key to follow, build id) for the logs of a space the caller may read."""
    with ctx.session() as session:
        principal = request_principal(ctx, session, request)
        return log_source(ctx, session, readable_space(session, principal, owner, name), kind)


@router.get(
    "/api/spaces/{owner}/{name}/logs/{kind}",
    summary="Build or run logs (Server-Sent Events)",
    description='Each event is `data: {"data": "<line>\\n", "timestamp": "<ISO 8601>"}`. The stream '
    "replays the log, then follows it: a build log ends with its build, a run log stays open. "
    "Empty `data:` events are keep-alives.",
    response_class=StreamingResponse,
)
async def logs(
    owner: str,
    name: str,
    kind: Literal["build", "run"],
    request: Request,
    tail: int | None = Query(None, ge=1, le=100_000),
) -> StreamingResponse:
    """Stream the space's build or run log as Server-Sent Events, from the start or its last `tail` lines."""
    ctx: ControllerContext = request.app.state.ctx
    key, build_id = await run_in_threadpool(_log_source, ctx, request, owner, name, kind)

    async def events() -> AsyncIterator[bytes]:
        async for item in follow_log(ctx, request.app.state.aredis, key, build_id, tail):
            yield KEEPALIVE if item is None else sse_event(item.text, item.timestamp)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
