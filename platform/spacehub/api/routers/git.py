"""`git clone` / `git push` over smart HTTP at the Hub's URLs (HTTP Basic, token as password)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from spacehub.api.deps import bearer_token, resolve_principal
from spacehub.controller.access import can_read, can_write
from spacehub.controller.context import ControllerContext
from spacehub.controller.repos import find_repo, git_path
from spacehub.controller.spaces import handle_push
from spacehub.db.models import Repo, RepoType
from spacehub.errors import SpacehubError, Unauthorized
from spacehub.repos import smart_http

router = APIRouter(tags=["git"])


@dataclass(frozen=True)
class GitTarget:
    repo_id: int
    path: Path


class DuplexStreamingResponse(StreamingResponse):
    """Streams git's output while the request body is still being read. Starlette's own
    StreamingResponse reads `receive` to notice disconnects, which would steal the push's body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream_response(send)


class GitDenied(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message

    def response(self) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="spacehub"'} if self.status == 401 else {}
        return PlainTextResponse(self.message + "\n", status_code=self.status, headers=headers)


def _authorize(
    ctx: ControllerContext, token: str | None, type: RepoType, owner: str, name: str, write: bool
) -> GitTarget:
    """Anonymous callers are asked for credentials (401) whether or not the repository exists, so
    that a private repository cannot be told apart from a missing one; signed-in callers without
    access get the same 404 as for a missing repository."""
    name = name.removesuffix(".git")
    with ctx.session() as session:
        try:
            principal = resolve_principal(ctx, session, token)
        except Unauthorized as exc:
            raise GitDenied(401, exc.message) from None
        anonymous = principal.account is None and not principal.internal
        repo = find_repo(session, type, owner, name)
        if repo is None or not can_read(session, principal, repo):
            if anonymous:
                raise GitDenied(401, "Authentication required: use your token as the password")
            raise GitDenied(404, f"Repository {owner}/{name} not found")
        if write:
            if anonymous:
                raise GitDenied(401, "Pushing needs a write token as the password")
            if not can_write(session, principal, repo):
                raise GitDenied(403, f"You may not push to {owner}/{name} (a write token is needed)")
        return GitTarget(repo_id=repo.id, path=git_path(ctx.settings, repo))


def _after_push(ctx: ControllerContext, repo_id: int) -> None:
    with ctx.session() as session:
        repo = session.get(Repo, repo_id)
        if repo is not None:
            handle_push(ctx, session, repo)


def _add_routes(prefix: str, type: RepoType) -> None:
    base = f"{prefix}/{{owner}}/{{name}}"

    @router.get(f"{base}/info/refs", summary=f"git: discover refs ({type.value}s)", name=f"git_refs_{type}")
    async def info_refs(request: Request, owner: str, name: str, service: str | None = None) -> Response:
        ctx: ControllerContext = request.app.state.ctx
        if service not in smart_http.SERVICES:
            return PlainTextResponse("only git's smart HTTP protocol is served\n", status_code=403)
        try:
            target = await run_in_threadpool(
                _authorize, ctx, bearer_token(request), type, owner, name, service == "git-receive-pack"
            )
        except GitDenied as denied:
            return denied.response()
        body = await smart_http.advertise_refs(
            target.path, service, request.headers.get("git-protocol"), _service_config(ctx)
        )
        return Response(
            body,
            media_type=f"application/x-{service}-advertisement",
            headers={"Cache-Control": "no-cache"},
        )

    async def service_endpoint(request: Request, owner: str, name: str, service: str) -> Response:
        ctx: ControllerContext = request.app.state.ctx
        write = service == "git-receive-pack"
        try:
            target = await run_in_threadpool(_authorize, ctx, bearer_token(request), type, owner, name, write)
        except GitDenied as denied:
            return denied.response()
        output = smart_http.run_service(
            target.path,
            service,
            request.stream(),
            gzipped=request.headers.get("content-encoding", "").lower() == "gzip",
            git_protocol=request.headers.get("git-protocol"),
            config=_service_config(ctx),
        )

        async def body() -> AsyncIterator[bytes]:
            async for chunk in output:
                yield chunk
            if write:
                # Before the response ends: when `git push` returns, the build is already queued.
                with contextlib.suppress(SpacehubError):  # the push landed; the stage tells the rest
                    await run_in_threadpool(_after_push, ctx, target.repo_id)

        return DuplexStreamingResponse(
            body(), media_type=f"application/x-{service}-result", headers={"Cache-Control": "no-cache"}
        )

    @router.post(f"{base}/git-upload-pack", summary="git: fetch", name=f"git_upload_pack_{type}")
    async def upload_pack(request: Request, owner: str, name: str) -> Response:
        return await service_endpoint(request, owner, name, "git-upload-pack")

    @router.post(f"{base}/git-receive-pack", summary="git: push", name=f"git_receive_pack_{type}")
    async def receive_pack(request: Request, owner: str, name: str) -> Response:
        return await service_endpoint(request, owner, name, "git-receive-pack")


def _service_config(ctx: ControllerContext) -> dict[str, str]:
    return {"receive.maxInputSize": str(ctx.settings.max_body_size)}


_add_routes("/spaces", RepoType.SPACE)
_add_routes("/datasets", RepoType.DATASET)
_add_routes("", RepoType.MODEL)
