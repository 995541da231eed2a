"""Endpoints for spacehub's own components (agents, proxy), authenticated by the internal token.
The edge proxy never forwards /api/internal from outside."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from spacehub.api.deps import CtxDep, InternalDep, SessionDep
from spacehub.api.urls import app_path_prefix, app_url
from spacehub.controller.access import can_read
from spacehub.controller.accounts import authenticate
from spacehub.controller.repos import open_git
from spacehub.controller.spaces import check_commit
from spacehub.db.models import Build, Space, SpaceSecret, SpaceVariable
from spacehub.errors import Conflict, NotFound
from spacehub.queue.spec import DeploySpec

router = APIRouter(prefix="/api/internal", tags=["internal"], include_in_schema=False)


@router.get("/builds/{build_id}/spec", response_model=DeploySpec)
def build_spec(
    build_id: int, request: Request, ctx: CtxDep, session: SessionDep, _: InternalDep
) -> DeploySpec:
    build = session.get(Build, build_id)
    space = session.get(Space, build.space_id) if build is not None else None
    if build is None or space is None:
        raise NotFound(f"no build {build_id}")
    app = check_commit(ctx, space, build.sha)
    flavor = ctx.flavors.get(build.flavor)
    if flavor is None:
        raise Conflict(f"hardware flavor {build.flavor!r} is not configured any more")
    repo = space.repo
    base = ctx.settings.resolved_public_url
    return DeploySpec(
        build_id=build.id,
        space_id=space.repo_id,
        space_name=repo.full_name,
        subdomain=space.subdomain,
        sha=build.sha,
        current=space.current_build_id == build.id,
        factory=build.factory,
        sdk=app.sdk,
        app_file=app.app_file,
        app_port=app.app_port,
        sdk_version=app.sdk_version,
        python_version=app.python_version,
        startup_timeout=app.startup_timeout or ctx.settings.default_startup_timeout,
        flavor=flavor,
        title=app.config.title,
        app_url=app_url(ctx.settings, space, base),
        root_path=app_path_prefix(repo.owner.name, repo.name) if ctx.settings.routing == "path" else "",
        preload_from_hub=app.config.preload_from_hub or [],
        variables={v.key: v.value for v in session.query(SpaceVariable).filter_by(space_id=space.repo_id)},
        secrets={s.key: s.value for s in session.query(SpaceSecret).filter_by(space_id=space.repo_id)},
    )


@router.get("/builds/{build_id}/archive")
def build_archive(build_id: int, ctx: CtxDep, session: SessionDep, _: InternalDep) -> StreamingResponse:
    """The build's commit as a tar stream (the agent's build context)."""
    build = session.get(Build, build_id)
    space = session.get(Space, build.space_id) if build is not None else None
    if build is None or space is None:
        raise NotFound(f"no build {build_id}")
    proc = open_git(ctx.settings, space.repo).archive(build.sha)

    def chunks() -> Iterator[bytes]:
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read(1 << 16):
                yield chunk
        finally:
            proc.stdout.close()
            proc.wait()

    return StreamingResponse(chunks(), media_type="application/x-tar")


@router.get("/static/{space_id}/{sha}/{path:path}")
def static_file(
    space_id: int, sha: str, path: str, request: Request, ctx: CtxDep, session: SessionDep, _: InternalDep
) -> Response:
    """A file of a static space at a commit; directories answer with their index.html."""
    space = session.get(Space, space_id)
    if space is None:
        raise NotFound("no such space")
    git = open_git(ctx.settings, space.repo)
    entry = git.entry(sha, path)
    if entry is not None and entry.type == "tree":
        path = f"{path.rstrip('/')}/index.html".lstrip("/")
        entry = git.entry(sha, path)
    if entry is None or entry.type != "blob" or entry.is_symlink:
        return HTMLResponse("<!doctype html><title>Not found</title><h1>404: not found</h1>", status_code=404)
    etag = f'"{entry.oid}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    headers["Content-Length"] = str(entry.size)
    return StreamingResponse(git.stream_blob(entry.oid), media_type=media_type, headers=headers)


@router.get("/authorize")
def authorize(
    space_id: int, request: Request, ctx: CtxDep, session: SessionDep, _: InternalDep
) -> dict[str, bool]:
    """Whether the user token in X-Spacehub-User-Token may open space `space_id`'s app (the edge
    proxy asks, for private spaces, and caches the answer briefly)."""
    space = session.get(Space, space_id)
    token = request.headers.get("x-spacehub-user-token", "")
    if space is None or not token:
        return {"allowed": False}
    principal = authenticate(session, token)
    return {"allowed": principal is not None and can_read(session, principal, space.repo)}
