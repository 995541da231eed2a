"""`git clone` / `git push` over smart HTTP at the Hub's URLs (HTTP Basic, token as password)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from spacehub.controller.context import ControllerContext
from spacehub.controller.git_access import (
    PUSH,
    SERVICES,
    GitDenied,
    GitTarget,
    advertise_refs,
    after_push,
    git_target,
    run_service,
)
from spacehub.db.models import RepoType
from spacehub.errors import SpacehubError, Unauthorized
from spacehub.http.deps import bearer_token, resolve_principal

router = APIRouter(tags=["git"])


class DuplexStreamingResponse(StreamingResponse):
    """Streams git's output while the request body is still being read. Starlette's own
    StreamingResponse reads `receive` to notice disconnects, which would steal the push's body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream_response(send)


def denial(status: int, message: str) -> Response:
    """What git clients understand when they may not proceed (401 asks for a token)."""
    headers = {"WWW-Authenticate": 'Basic realm="spacehub"'} if status == 401 else {}
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def authorize(
    ctx: ControllerContext, token: str | None, type: RepoType, owner: str, name: str, write: bool
) -> GitTarget:
    """The repository a git request may reach with `token`; GitDenied (401) when the token is not valid."""
    with ctx.session() as session:
        try:
            principal = resolve_principal(ctx, session, token)
        except Unauthorized as exc:
            raise GitDenied(401, exc.message) from None
    return git_target(ctx, principal, type, owner, name, write=write)


def _add_routes(prefix: str, type: RepoType) -> None:
    base = f"{prefix}/{{owner}}/{{name}}"

    @router.get(f"{base}/info/refs", summary=f"git: discover refs ({type.value}s)", name=f"git_refs_{type}")
    async def info_refs(request: Request, owner: str, name: str, service: str | None = None) -> Response:
        ctx: ControllerContext = request.app.state.ctx
        if service not in SERVICES:
            return PlainTextResponse("only git's smart HTTP protocol is served\n", status_code=403)
        try:
            target = await run_in_threadpool(
                authorize, ctx, bearer_token(request), type, owner, name, service == PUSH
            )
        except GitDenied as denied:
            return denial(denied.status, denied.message)
        body = await advertise_refs(ctx, target, service, request.headers.get("git-protocol"))
        return Response(
            body,
            media_type=f"application/x-{service}-advertisement",
            headers={"Cache-Control": "no-cache"},
        )

    async def service_endpoint(request: Request, owner: str, name: str, service: str) -> Response:
        ctx: ControllerContext = request.app.state.ctx
        write = service == PUSH
        try:
            target = await run_in_threadpool(authorize, ctx, bearer_token(request), type, owner, name, write)
        except GitDenied as denied:
            return denial(denied.status, denied.message)
        output = run_service(
            ctx,
            target,
            service,
            request.stream(),
            gzipped=request.headers.get("content-encoding", "").lower() == "gzip",
            protocol=request.headers.get("git-protocol"),
        )

        async def body() -> AsyncIterator[bytes]:
            async for chunk in output:
                yield chunk
            if write:
                # Before the response ends: when `git push` returns, the build is already queued.
                with contextlib.suppress(SpacehubError):  # the push landed; the stage tells the rest
                    await run_in_threadpool(after_push, ctx, target.repo_id)

        return DuplexStreamingResponse(
            body(), media_type=f"application/x-{service}-result", headers={"Cache-Control": "no-cache"}
        )

    @router.post(f"{base}/git-upload-pack", summary="git: fetch", name=f"git_upload_pack_{type}")
    async def upload_pack(request: Request, owner: str, name: str) -> Response:
        return await service_endpoint(request, owner, name, "git-upload-pack")

    @router.post(f"{base}/git-receive-pack", summary="git: push", name=f"git_receive_pack_{type}")
    async def receive_pack(request: Request, owner: str, name: str) -> Response:
        return await service_endpoint(request, owner, name, "git-receive-pack")


_add_routes("/spaces", RepoType.SPACE)
_add_routes("/datasets", RepoType.DATASET)
_add_routes("", RepoType.MODEL)
