"""Endpoints for spacehub's own components (agents, proxy), authenticated by the internal token.
The edge proxy never forwards /api/internal from outside."""

from __future__ import annotations

import mimetypes
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from spacehub.controller.access import may_open_app
from spacehub.controller.deploys import commit_archive, deploy_spec, repo_archive
from spacehub.controller.files import static_file
from spacehub.http.deps import CtxDep, InternalDep, SessionDep

router = APIRouter(prefix="/api/internal", tags=["internal"], include_in_schema=False)


@router.get("/builds/{build_id}/spec")
def build_spec(build_id: int, ctx: CtxDep, session: SessionDep, _: InternalDep) -> dict[str, Any]:
    """What an agent needs to build and run one build (secrets included: internal only)."""
    return deploy_spec(ctx, session, build_id).model_dump(mode="json")


@router.get("/builds/{build_id}/archive")
def build_archive(build_id: int, ctx: CtxDep, session: SessionDep, _: InternalDep) -> StreamingResponse:
    """The build's commit as a tar stream (the agent's build context)."""
    return StreamingResponse(commit_archive(ctx, session, build_id), media_type="application/x-tar")


@router.get("/repos/{repo_id}/archive/{sha}")
def volume_archive(
    repo_id: int, sha: str, ctx: CtxDep, session: SessionDep, _: InternalDep
) -> StreamingResponse:
    """A commit of a repository as a tar stream (a repository volume, for the agent to mount)."""
    return StreamingResponse(repo_archive(ctx, session, repo_id, sha), media_type="application/x-tar")


@router.get("/static/{space_id}/{sha}/{path:path}")
def static_space_file(
    space_id: int, sha: str, path: str, request: Request, ctx: CtxDep, session: SessionDep, _: InternalDep
) -> Response:
    """A file of a static space at a commit; directories answer with their index.html."""
    found = static_file(ctx, session, space_id, sha, path)
    if found is None:
        return HTMLResponse("<!doctype html><title>Not found</title><h1>404: not found</h1>", status_code=404)
    etag = f'"{found.oid}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media_type = mimetypes.guess_type(found.path)[0] or "application/octet-stream"
    headers["Content-Length"] = str(found.size)
    return StreamingResponse(found.chunks(), media_type=media_type, headers=headers)


@router.get("/authorize")
def authorize(
    space_id: int, request: Request, ctx: CtxDep, session: SessionDep, _: InternalDep
) -> dict[str, bool]:
    """Whether a user may open space `space_id`'s app: by the token in X-Spacehub-User-Token, or
    by the signed-in session (`account:epoch`) of a signed app link in X-Spacehub-Session (the edge
    asks, for private spaces, and caches the answer briefly)."""
    token = request.headers.get("x-spacehub-user-token", "")
    holder = request.headers.get("x-spacehub-session", "")
    return {"allowed": may_open_app(session, space_id, token, holder)}
