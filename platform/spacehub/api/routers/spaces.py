"""Space endpoints of the Hub API: runtime and logs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from spacehub.api.deps import CtxDep, PrincipalDep, SessionDep, bearer_token, resolve_principal
from spacehub.api.serializers import space_runtime
from spacehub.api.urls import app_url, public_base_url
from spacehub.controller.buildlogs import read_persisted
from spacehub.controller.context import ControllerContext
from spacehub.controller.repos import get_readable_repo
from spacehub.db.models import Build, RepoType, Space
from spacehub.errors import RepoNotFound
from spacehub.state.logs import LogLine, read_stream

router = APIRouter(tags=["spaces"])

KEEPALIVE = b"data: \n\n"


def readable_space(session: Any, principal: Any, owner: str, name: str) -> Space:
    repo = get_readable_repo(session, principal, RepoType.SPACE, owner, name)
    if repo.space is None:
        raise RepoNotFound(f"Repository {owner}/{name} not found")
    return repo.space


@router.get("/api/spaces/{owner}/{name}/runtime", summary="Stage, hardware and sleep time of a space")
def runtime(
    owner: str, name: str, request: Request, ctx: CtxDep, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    space = readable_space(session, principal, owner, name)
    return space_runtime(ctx, space, app_url(ctx.settings, space, public_base_url(request)))


def sse_event(line: LogLine) -> bytes:
    payload = json.dumps({"data": line.text + "\n", "timestamp": line.timestamp})
    return f"data: {payload}\n\n".encode()


def _log_source(
    ctx: ControllerContext, token: str | None, owner: str, name: str, kind: str
) -> tuple[str, int | None]:
    """(Redis key to follow, build id) for the logs of a space the caller may read."""
    with ctx.session() as session:
        principal = resolve_principal(ctx, session, token)
        space = readable_space(session, principal, owner, name)
        if kind == "run":
            return ctx.keys.run_log(space.repo_id), None
        build_id = space.current_build_id or session.scalar(
            select(Build.id).where(Build.space_id == space.repo_id).order_by(Build.id.desc()).limit(1)
        )
        return (ctx.keys.build_log(build_id) if build_id else ""), build_id


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
    ctx: ControllerContext = request.app.state.ctx
    key, build_id = await run_in_threadpool(_log_source, ctx, bearer_token(request), owner, name, kind)

    async def events() -> AsyncIterator[bytes]:
        if not key:
            return
        if build_id is not None:
            persisted = await run_in_threadpool(read_persisted, ctx.settings, build_id)
            if persisted is not None:
                for line in persisted[-tail:] if tail else persisted:
                    yield sse_event(line)
                return
        async for item in read_stream(request.app.state.aredis, key, follow=True, tail=tail):
            yield KEEPALIVE if item is None else sse_event(item)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
