"""Repository content over the Hub API: preupload, commit, tree, paths-info, refs, commits,
resolve, validate-yaml. One code path for models, datasets and spaces (controller/files.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from spacehub.api.routers.repos import RepoTypePlural
from spacehub.controller import files
from spacehub.controller.context import ControllerContext
from spacehub.controller.files import FileAt, readable_git, writable_repo
from spacehub.controller.listing import decode_cursor, encode_cursor
from spacehub.controller.repos import open_git
from spacehub.db.models import RepoType
from spacehub.errors import PayloadTooLarge
from spacehub.http.deps import CtxDep, PrincipalDep, SessionDep, bearer_token, resolve_principal
from spacehub.http.downloads import download_response
from spacehub.http.errors import header_value
from spacehub.http.urls import next_link, public_base_url, repo_url

router = APIRouter(tags=["files"])

TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50


def raw_tail(request: Request, marker: str) -> str:
    """The part of the raw (still percent-encoded) URL path after `marker`."""
    raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    return raw.split(marker, 1)[1] if marker in raw else ""


# Preupload ---------------------------------------------------------------------------------------


class PreuploadFile(BaseModel):
    path: str
    sample: str | None = None
    size: int = 0


class PreuploadRequest(BaseModel):
    files: list[PreuploadFile] = Field(max_length=1000)
    gitIgnore: str | None = None


@router.post("/api/{type_plural}/{owner}/{name}/preupload/{revision:path}", summary="How to upload each file")
def preupload(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    revision: str,
    body: PreuploadRequest,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    create_pr: str | None = None,
) -> dict[str, Any]:
    """Every file is `regular`: sent inline in the commit, stored in git. `oid` is the blob id of
    the file already at that path, so clients skip unchanged files."""
    proposal = create_pr not in (None, "", "0", "false")
    repo = writable_repo(session, principal, type_plural.repo_type, owner, name, proposal=proposal)
    return files.preupload(open_git(ctx.settings, repo), revision, [item.path for item in body.files])


# Commit ------------------------------------------------------------------------------------------


@router.post(
    "/api/{type_plural}/{owner}/{name}/commit/{revision:path}",
    summary="Commit files (NDJSON: header, file, deletedFile, deletedFolder)",
    description="The body is NDJSON (`application/x-ndjson`), one operation a line, as huggingface_hub sends "
    "it, or the older JSON object. Files are streamed to disk as they arrive. A `parentCommit` that is no "
    "longer the branch's head is refused with 409 and changes nothing.",
)
async def commit(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    revision: str,
    request: Request,
    create_pr: str | None = None,
) -> Response:
    """Commit files to a branch of the repository, streaming the body to disk; returns the new commit."""
    ctx: ControllerContext = request.app.state.ctx
    as_pr = create_pr not in (None, "", "0", "false")  # as huggingface_hub sends it: "1"
    token = bearer_token(request)
    spool = await run_in_threadpool(_commit_target, ctx, token, type_plural.repo_type, owner, name, as_pr)
    limit = ctx.settings.max_body_size
    with tempfile.TemporaryDirectory(prefix="commit-", dir=spool) as tmp:
        payload = Path(tmp) / "payload"
        size = 0
        with payload.open("wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the commit is larger than {limit} bytes")
                handle.write(chunk)
        is_json = request.headers.get("content-type", "").startswith("application/json")
        sha, url, pull = await run_in_threadpool(
            _apply_commit, ctx, request, token, type_plural.repo_type, owner, name, payload, is_json, as_pr
        )
    return JSONResponse(
        {
            "success": True,
            "commitOid": sha,
            "commitUrl": f"{url}/commit/{sha}",
            "hookOutput": "",
            "pullRequestUrl": f"{url}/discussions/{pull}" if pull is not None else None,
        }
    )


def _commit_target(
    ctx: ControllerContext, token: str | None, type: RepoType, owner: str, name: str, as_pr: bool
) -> Path:
    """Check, before reading the body, that the caller may commit; where to spool the body."""
    with ctx.session() as session:
        principal = resolve_principal(ctx, session, token)
        return files.staging_dir(ctx, writable_repo(session, principal, type, owner, name, proposal=as_pr))


def _apply_commit(
    ctx: ControllerContext,
    request: Request,
    token: str | None,
    type: RepoType,
    owner: str,
    name: str,
    payload: Path,
    is_json: bool,
    as_pr: bool,
) -> tuple[str, str, int | None]:
    branch = unquote(request.path_params["revision"])
    with ctx.session() as session:
        principal = resolve_principal(ctx, session, token)
        repo = writable_repo(session, principal, type, owner, name, proposal=as_pr)
        sha, pull = files.apply_commit(
            ctx, session, principal, repo, payload, branch, is_json=is_json, create_pr=as_pr
        )
        return sha, repo_url(public_base_url(request), repo), pull.num if pull is not None else None


# Tree, paths-info, refs, commits -----------------------------------------------------------------


@router.get("/api/{type_plural}/{owner}/{name}/tree/{tail:path}", summary="List files and folders")
def tree(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    tail: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    recursive: bool = False,
    expand: bool = False,
    limit: int | None = None,
    cursor: str | None = None,
) -> Response:
    """Entries under a path at a revision, paginated with a `Link: <...>; rel="next"` header."""
    git = readable_git(ctx, session, principal, type_plural.repo_type, owner, name)
    size = min(limit or TREE_PAGE, TREE_PAGE_EXPANDED if expand else TREE_PAGE)
    start = decode_cursor(cursor)
    page = files.tree_page(
        git, raw_tail(request, "/tree/"), recursive=recursive, expand=expand, start=start, size=size
    )
    if page is None:
        return JSONResponse([])  # a new, empty repository: its default branch has no files yet
    headers = {"X-Repo-Commit": page.commit}
    if page.more:
        headers["Link"] = next_link(request, encode_cursor(start + size))
    return JSONResponse(page.items, headers=headers)


@router.post("/api/{type_plural}/{owner}/{name}/paths-info/{revision:path}", summary="Info about given paths")
async def paths_info(
    type_plural: RepoTypePlural, owner: str, name: str, revision: str, request: Request
) -> list[dict[str, Any]]:
    """The entries of the given paths (form fields `paths` and `expand`, or the same as JSON);
    paths that do not exist are left out."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        paths, expand = list(body.get("paths") or []), bool(body.get("expand"))
    else:
        form = await request.form()
        paths = [str(p) for p in form.getlist("paths")]
        expand = str(form.get("expand", "")).lower() in ("1", "true")
    ctx: ControllerContext = request.app.state.ctx

    def find() -> list[dict[str, Any]]:
        with ctx.session() as session:
            principal = resolve_principal(ctx, session, bearer_token(request))
            git = readable_git(ctx, session, principal, type_plural.repo_type, owner, name)
            return files.paths_info(git, unquote(revision), paths, expand)

    return await run_in_threadpool(find)


@router.get("/api/{type_plural}/{owner}/{name}/refs", summary="Branches and tags")
def refs(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """The repository's branches and tags with the commits they point at."""
    return files.refs(readable_git(ctx, session, principal, type_plural.repo_type, owner, name))


@router.get("/api/{type_plural}/{owner}/{name}/commits/{revision:path}", summary="Commit history")
def commits(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    revision: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    limit: int | None = None,
    cursor: str | None = None,
) -> Response:
    """Commits reachable from a revision, newest first, paginated with `Link` headers."""
    git = readable_git(ctx, session, principal, type_plural.repo_type, owner, name)
    size, start = min(limit or 50, 500), decode_cursor(cursor)
    page = files.history(git, unquote(revision), start=start, size=size)
    return JSONResponse(
        page.items, headers={"Link": next_link(request, encode_cursor(start + size))} if page.more else {}
    )


# Resolve -----------------------------------------------------------------------------------------


def _add_resolve_routes(prefix: str, type: RepoType) -> None:
    @router.api_route(
        f"{prefix}/{{owner}}/{{name}}/resolve/{{tail:path}}",
        methods=["GET", "HEAD"],
        summary=f"Download a file ({type.value}s)",
        name=f"resolve_{type.value}",
    )
    def resolve(
        owner: str,
        name: str,
        tail: str,
        request: Request,
        ctx: CtxDep,
        session: SessionDep,
        principal: PrincipalDep,
    ) -> Response:
        """The file's bytes, with `X-Repo-Commit`, `ETag` (the git blob id), `Content-Length` and
        `Range` support; 404s carry `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound)."""
        git = readable_git(ctx, session, principal, type, owner, name)
        sha, path, found = files.find_file(git, raw_tail(request, "/resolve/"))
        if found is None:
            message = f"{path} does not exist at {sha[:12]}"
            return JSONResponse(
                {"error": message},
                status_code=404,
                headers={
                    "X-Error-Code": "EntryNotFound",
                    "X-Error-Message": header_value(message),
                    "X-Repo-Commit": sha,
                },
            )
        return file_response(request, found)


def file_response(request: Request, found: FileAt) -> Response:
    """A repository's file, as a download that never runs as a page of the hub."""
    headers = {"X-Repo-Commit": found.commit, "ETag": f'"{found.oid}"'}
    return download_response(request, found.path, found.size, found.chunks, headers)


# validate-yaml -----------------------------------------------------------------------------------


class ValidateYaml(BaseModel):
    content: str
    repoType: str = "model"


@router.post("/api/validate-yaml", summary="Check a README's front matter")
def validate_yaml(body: ValidateYaml) -> JSONResponse:
    """200 with `warnings` when the front matter is usable, 400 with `errors` naming the line."""
    problem = files.front_matter_problem(body.content, body.repoType)
    if problem is not None:
        return JSONResponse({"errors": [{"message": problem}], "warnings": []}, status_code=400)
    return JSONResponse({"errors": [], "warnings": []})


_add_resolve_routes("/spaces", RepoType.SPACE)
_add_resolve_routes("/datasets", RepoType.DATASET)
_add_resolve_routes("", RepoType.MODEL)
