"""Buckets as the Hub's API serves them to `huggingface_hub`: create, info, list, settings, delete,
file listings and downloads. Uploading through the client needs the Xet protocol, which this hub
does not speak: such requests say so and point to the bucket's page (uploads) and to the mounts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from spacehub.controller import bucket_files, buckets
from spacehub.errors import BadRequest, Conflict, EntryNotFound, SpacehubError, Unsupported
from spacehub.http.deps import CtxDep, PrincipalDep, SessionDep, UserDep
from spacehub.http.downloads import download_response
from spacehub.http.errors import error_response
from spacehub.http.urls import public_base_url

router = APIRouter(tags=["buckets"])

BASE = "/api/buckets/{namespace}/{name}"
XET_ADVICE = (
    "this hub stores bucket files without the Xet protocol, so `huggingface_hub` cannot upload to "
    "it: upload on the bucket's page ({url}), or write from a space that mounts the bucket. "
    "Listing, downloading (HfFileSystem) and deleting work from the client."
)


class CreateBucket(BaseModel):
    visibility: Literal["public", "private"] | None = None
    private: bool | None = None


@router.post(BASE, summary="Create a bucket")
def create(
    namespace: str,
    name: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: UserDep,
    body: CreateBucket | None = Body(None),
) -> JSONResponse:
    """A new, empty bucket (`me` is the caller's namespace); 409 when it exists, with its `url`
    (what `create_bucket(exist_ok=True)` reads)."""
    private = bool(body and (body.visibility == "private" or body.private))
    try:
        bucket = buckets.create_bucket(ctx, session, principal, namespace, name, private)
    except Conflict as exc:
        existing = buckets.readable_bucket(session, principal, namespace, name)
        url = buckets.bucket_url(public_base_url(request), existing)
        return error_response(exc.status_code, exc.message, exc.error_code, url=url)
    return JSONResponse(buckets.bucket_json(ctx, bucket, public_base_url(request)))


@router.get(BASE, summary="Bucket info")
def info(
    namespace: str, name: str, request: Request, ctx: CtxDep, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The bucket's visibility, creation time, size, file count and quota."""
    bucket = buckets.readable_bucket(session, principal, namespace, name)
    return buckets.bucket_json(ctx, bucket, public_base_url(request))


@router.get("/api/buckets/{namespace}", summary="List a namespace's buckets")
def list_buckets(
    namespace: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    search: str | None = None,
) -> list[dict[str, Any]]:
    """The buckets of a user or organization (`me`: the caller's) that the caller may see."""
    base = public_base_url(request)
    return [
        buckets.bucket_json(ctx, b, base) for b in buckets.list_buckets(session, principal, namespace, search)
    ]


@router.delete(BASE, summary="Delete a bucket and its files")
def delete(namespace: str, name: str, ctx: CtxDep, session: SessionDep, principal: UserDep) -> dict[str, Any]:
    """Delete the bucket and every file in it; 409 while a space mounts it."""
    buckets.delete_bucket(ctx, session, buckets.writable_bucket(session, principal, namespace, name))
    return {}


class BucketSettings(BaseModel):
    private: bool | None = None
    quota: int | None = None


@router.put(f"{BASE}/settings", summary="Change a bucket's visibility (and, for admins, its quota)")
def settings(
    namespace: str, name: str, body: BucketSettings, session: SessionDep, principal: UserDep
) -> dict[str, Any]:
    """Make the bucket private or public; administrators also set `quota` (bytes)."""
    if body.quota is not None and body.quota <= 0:
        raise BadRequest("`quota` is a number of bytes above 0")
    bucket = buckets.writable_bucket(session, principal, namespace, name)
    buckets.change_settings(session, principal, bucket, body.private, body.quota)
    return {}


@router.get(f"{BASE}/tree", summary="List a bucket's files")
@router.get(BASE + "/tree/{prefix:path}", summary="List a bucket's files under a prefix")
def tree(
    namespace: str,
    name: str,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    prefix: str = "",
    recursive: bool = False,
) -> list[dict[str, Any]]:
    """Files (`type: file`, with size and times) and folders under `prefix`, or all below it with
    `recursive`. `xetHash` is null: files download over plain HTTP."""
    bucket = buckets.readable_bucket(session, principal, namespace, name)
    root = buckets.bucket_root(ctx, bucket)
    return [buckets.entry_json(e) for e in bucket_files.entries(root, prefix, recursive=recursive)]


class PathsInfo(BaseModel):
    paths: list[str]


@router.post(f"{BASE}/paths-info", summary="Information about some of a bucket's files")
def paths_info(
    namespace: str, name: str, body: PathsInfo, ctx: CtxDep, session: SessionDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    """The files among `paths` that exist (others are left out)."""
    if len(body.paths) > 1000:
        raise BadRequest("ask about at most 1000 paths at once")
    bucket = buckets.readable_bucket(session, principal, namespace, name)
    root = buckets.bucket_root(ctx, bucket)
    found = (bucket_files.path_info(root, path) for path in body.paths)
    return [buckets.entry_json(entry) for entry in found if entry is not None]


@router.post(
    f"{BASE}/batch",
    summary="Delete files (NDJSON operations)",
    description="One JSON object per line. `deleteFile` operations are applied; `addFile` and "
    "`copyFile` need the Xet protocol and are reported as failed with the reason.",
)
async def batch(
    namespace: str, name: str, request: Request, ctx: CtxDep, session: SessionDep, principal: UserDep
) -> JSONResponse:
    """Apply `deleteFile` operations; list every operation that failed and why (422 when all did)."""
    operations = list(parse_ndjson(await request.body()))
    bucket = await run_in_threadpool(buckets.writable_bucket, session, principal, namespace, name)
    url = buckets.bucket_url(public_base_url(request), bucket)
    failed = await run_in_threadpool(apply_batch, buckets.bucket_root(ctx, bucket), operations, url)
    status = 422 if operations and len(failed) == len(operations) else 200
    return JSONResponse({"failed": failed}, status_code=status)


def apply_batch(root: Path, operations: list[dict[str, Any]], url: str) -> list[dict[str, Any]]:
    """Delete the files the operations name; the operations that failed, and why."""
    failed = []
    for operation in operations:
        path = operation.get("path")
        if operation.get("type") != "deleteFile":
            failed.append({"path": path, "error": XET_ADVICE.format(url=url)})
            continue
        try:
            bucket_files.delete_file(root, str(path))
        except SpacehubError as exc:
            failed.append({"path": path, "error": exc.message})
    return failed


def parse_ndjson(body: bytes) -> Iterator[dict[str, Any]]:
    """The operations of an NDJSON body; BadRequest for a line that is not a JSON object."""
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise BadRequest(f"line {number} of the batch is not JSON") from None
        if not isinstance(item, dict):
            raise BadRequest(f"line {number} of the batch is not a JSON object")
        yield item


def _refuse_xet(kind: str) -> None:
    @router.get(
        f"{BASE}/xet-{kind}-token", summary=f"Xet {kind} token: not offered (501)", name=f"xet_{kind}"
    )
    def xet_token(
        namespace: str, name: str, request: Request, session: SessionDep, principal: PrincipalDep
    ) -> None:
        bucket = buckets.readable_bucket(session, principal, namespace, name)
        url = buckets.bucket_url(public_base_url(request), bucket)
        raise Unsupported(XET_ADVICE.format(url=url), status_code=501)


for _kind in ("read", "write"):
    _refuse_xet(_kind)


@router.api_route(
    "/buckets/{namespace}/{name}/resolve/{path:path}", methods=["GET", "HEAD"], summary="Download a file"
)
def resolve(
    namespace: str,
    name: str,
    path: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> Response:
    """A bucket file's bytes over plain HTTP, with `Range` support (what HfFileSystem reads)."""
    bucket = buckets.readable_bucket(session, principal, namespace, name)
    root = buckets.bucket_root(ctx, bucket)
    try:
        handle, entry = bucket_files.open_file(root, path)
    except BadRequest:
        raise EntryNotFound(f"{path} is not in {bucket.full_name}") from None
    if request.method == "HEAD":
        handle.close()

    def chunks(offset: int) -> Iterator[bytes]:
        with handle:
            handle.seek(offset)
            while chunk := handle.read(1 << 16):
                yield chunk

    etag = f'"{entry.size:x}-{int(entry.mtime.timestamp() * 1e6):x}"'
    return download_response(request, entry.path, entry.size, chunks, {"ETag": etag})
