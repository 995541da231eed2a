"""Repository content over the Hub API: preupload, commit, tree, paths-info, refs, resolve,
validate-yaml. One code path for models, datasets and spaces."""

from __future__ import annotations

import json
import mimetypes
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from spacehub.api.deps import CtxDep, PrincipalDep, SessionDep, bearer_token, resolve_principal
from spacehub.api.routers.repos import RepoTypePlural
from spacehub.api.serializers import iso
from spacehub.api.urls import public_base_url, repo_url
from spacehub.controller.access import can_write
from spacehub.controller.accounts import Principal
from spacehub.controller.context import ControllerContext
from spacehub.controller.listing import decode_cursor, encode_cursor
from spacehub.controller.repos import get_readable_repo, open_git
from spacehub.controller.spaces import handle_push
from spacehub.db.models import Repo, RepoType
from spacehub.errors import (
    BadRequest,
    EntryNotFound,
    Forbidden,
    PayloadTooLarge,
    RevisionNotFound,
    SpacehubError,
)
from spacehub.repos.commits import CommitError, CommitPlan, add_operation, apply_plan, plan_from_json
from spacehub.repos.git import DEFAULT_BRANCH, GitRepo, TreeEntry
from spacehub.repos.ndjson import NdjsonError, NdjsonReader
from spacehub.spec.config import ConfigError, load_space_config
from spacehub.spec.frontmatter import FrontMatterError, parse_front_matter

router = APIRouter(tags=["files"])

TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50
# Served from the hub's own origin: never let a repository's file run as a page there.
ACTIVE_TYPES = re.compile(
    r"^(text/html|image/svg|application/xhtml|text/xml|application/xml|application/javascript|text/javascript)"
)


def split_revision(git: GitRepo, raw_tail: str) -> tuple[str, str, str]:
    """(revision, commit id, path) from `{revision}/{path}` as it came in the URL.

    Clients quote slashes in revisions (`refs%2Fpr%2F1`); others do not, so when the first segment
    names no revision, longer prefixes are tried."""
    segments = raw_tail.split("/")
    for count in range(1, len(segments) + 1):
        revision = unquote("/".join(segments[:count]))
        sha = git.resolve(revision) if revision else None
        if sha is not None:
            return revision, sha, unquote("/".join(segments[count:]))
    raise RevisionNotFound(f"Invalid rev id: {unquote(segments[0])}")


def raw_tail(request: Request, marker: str) -> str:
    """The part of the raw (still percent-encoded) URL path after `marker`."""
    raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    return raw.split(marker, 1)[1] if marker in raw else ""


def entry_json(entry: TreeEntry, last_commit: dict[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "file" if entry.type == "blob" else "directory",
        "oid": entry.oid,
        "size": entry.size,
        "path": entry.path,
    }
    if last_commit is not None:
        item["lastCommit"] = last_commit
    return item


def last_commit_of(git: GitRepo, sha: str, path: str) -> dict[str, Any] | None:
    out = git.run("log", "-1", "--format=%H", sha, "--", path).decode().strip()
    if not out:
        return None
    info = git.commit_info(out)
    return {"id": info.sha, "title": info.title, "date": iso(info.date)}


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
) -> dict[str, Any]:
    """Every file is `regular`: sent inline in the commit, stored in git. `oid` is the blob id of
    the file already at that path, so clients skip unchanged files."""
    repo = writable_repo(session, principal, type_plural.repo_type, owner, name)
    git = open_git(ctx.settings, repo)
    sha = git.resolve(revision)
    existing = {e.path: e.oid for e in git.files(sha)} if sha else {}
    files = []
    for item in body.files:
        path = item.path.strip("/")
        ignored = path == ".git" or path.startswith(".git/")
        files.append(
            {"path": item.path, "uploadMode": "regular", "shouldIgnore": ignored, "oid": existing.get(path)}
        )
    return {"files": files, "commitOid": sha}


def writable_repo(session: Any, principal: Principal, type: RepoType, owner: str, name: str) -> Repo:
    repo = get_readable_repo(session, principal, type, owner, name)
    if not can_write(session, principal, repo):
        raise Forbidden(f"you need a write token with access to {repo.full_name}")
    return repo


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
    ctx: ControllerContext = request.app.state.ctx
    if create_pr not in (None, "", "0", "false"):
        raise BadRequest("pull requests are not supported: commit to a branch")
    repo_id, git = await run_in_threadpool(
        _commit_target, ctx, bearer_token(request), type_plural, owner, name
    )
    limit = ctx.settings.max_body_size
    with tempfile.TemporaryDirectory(prefix="commit-", dir=git.path) as tmp:
        payload = Path(tmp) / "payload"
        size = 0
        with payload.open("wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the commit is larger than {limit} bytes")
                handle.write(chunk)
        is_json = request.headers.get("content-type", "").startswith("application/json")
        sha = await run_in_threadpool(
            _apply_commit, ctx, bearer_token(request), repo_id, payload, unquote(revision), is_json
        )
    base = public_base_url(request)
    with ctx.session() as session:
        repo = session.get(Repo, repo_id)
        assert repo is not None
        url = repo_url(base, repo)
    return JSONResponse(
        {
            "success": True,
            "commitOid": sha,
            "commitUrl": f"{url}/commit/{sha}",
            "hookOutput": "",
            "pullRequestUrl": None,
        }
    )


def _commit_target(
    ctx: ControllerContext, token: str | None, type_plural: RepoTypePlural, owner: str, name: str
) -> tuple[int, GitRepo]:
    with ctx.session() as session:
        principal = resolve_principal(ctx, session, token)
        repo = writable_repo(session, principal, type_plural.repo_type, owner, name)
        return repo.id, open_git(ctx.settings, repo)


def _apply_commit(
    ctx: ControllerContext, token: str | None, repo_id: int, payload: Path, branch: str, is_json: bool
) -> str:
    with ctx.session() as session:
        principal = resolve_principal(ctx, session, token)
        repo = session.get(Repo, repo_id)
        assert repo is not None
        git = open_git(ctx.settings, repo)
        if git.resolve(f"refs/tags/{branch}") or (len(branch) == 40 and git.resolve(branch) == branch):
            raise BadRequest(f"{branch!r} is not a branch: commits go to branches")
        max_file = ctx.settings.max_repo_file_size
        try:
            plan = _read_plan(git, payload, is_json, max_file)
            if branch != DEFAULT_BRANCH and git.head(branch) is None:
                raise CommitError(f"branch {branch!r} does not exist", 404, "RevisionNotFound")
            sha = apply_plan(git, plan, branch, principal.author)
        except CommitError as exc:
            raise SpacehubError(exc.message, error_code=exc.code, status_code=exc.status) from None
        except NdjsonError as exc:
            raise BadRequest(str(exc)) from None
        if branch == DEFAULT_BRANCH:
            handle_push(ctx, session, repo)
        return sha


def _read_plan(git: GitRepo, payload: Path, is_json: bool, max_file: int) -> CommitPlan:
    if is_json:
        try:
            body = json.loads(payload.read_bytes())
        except json.JSONDecodeError as exc:
            raise BadRequest(f"the commit payload is not JSON: {exc.msg}") from None
        if not isinstance(body, dict):
            raise BadRequest("the commit payload must be a JSON object")
        return plan_from_json(body, git, max_file)
    plan = CommitPlan()
    reader = NdjsonReader(payload.parent)
    seen_header = False
    with payload.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            for entry in reader.feed(chunk):
                seen_header = seen_header or (isinstance(entry, dict) and entry.get("key") == "header")
                add_operation(plan, git, entry, max_file)
    for entry in reader.close():
        seen_header = seen_header or (isinstance(entry, dict) and entry.get("key") == "header")
        add_operation(plan, git, entry, max_file)
    if not seen_header:
        raise BadRequest('the commit payload must start with a {"key": "header"} line')
    return plan


# Tree, paths-info, refs --------------------------------------------------------------------------


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
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    git = open_git(ctx.settings, repo)
    tail_raw = raw_tail(request, "/tree/")
    if unquote(tail_raw.split("/")[0]) == DEFAULT_BRANCH and not git.branches():
        return JSONResponse([])  # a new, empty repository: its default branch has no files yet
    _revision, sha, path = split_revision(git, tail_raw)
    path = path.strip("/")
    if path:
        entry = git.entry(sha, path)
        if entry is None or entry.type != "tree":
            raise EntryNotFound(f"{path} does not exist at {sha[:12]}")
    entries = git.tree(sha, path, recursive=recursive)
    page_size = min(limit or TREE_PAGE, TREE_PAGE_EXPANDED if expand else TREE_PAGE)
    start = decode_cursor(cursor)
    page = entries[start : start + page_size]
    items = [entry_json(e, last_commit_of(git, sha, e.path) if expand else None) for e in page]
    headers = {"X-Repo-Commit": sha}
    if start + page_size < len(entries):
        params = dict(request.query_params)
        params["cursor"] = encode_cursor(start + page_size)
        headers["Link"] = f'<{public_base_url(request)}{request.url.path}?{urlencode(params)}>; rel="next"'
    return JSONResponse(items, headers=headers)


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
    return await run_in_threadpool(
        _paths_info, ctx, bearer_token(request), type_plural, owner, name, unquote(revision), paths, expand
    )


def _paths_info(
    ctx: ControllerContext,
    token: str | None,
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    revision: str,
    paths: list[str],
    expand: bool,
) -> list[dict[str, Any]]:
    with ctx.session() as session:
        principal = resolve_principal(ctx, session, token)
        repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
        git = open_git(ctx.settings, repo)
        sha = git.resolve(revision)
        if sha is None:
            raise RevisionNotFound(f"Invalid rev id: {revision}")
        found = []
        for path in paths:
            entry = git.entry(sha, path.strip("/")) if path.strip("/") else None
            if entry is not None:
                found.append(entry_json(entry, last_commit_of(git, sha, entry.path) if expand else None))
        return found


@router.get("/api/{type_plural}/{owner}/{name}/refs", summary="Branches and tags")
def refs(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    git = open_git(ctx.settings, repo)

    def listing(refs: dict[str, str], kind: str) -> list[dict[str, str]]:
        return [
            {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": sha} for n, sha in sorted(refs.items())
        ]

    return {
        "branches": listing(git.branches(), "heads"),
        "tags": listing(git.tags(), "tags"),
        "converts": [],
        "pullRequests": [],
    }


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
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    git = open_git(ctx.settings, repo)
    sha = git.resolve(unquote(revision))
    if sha is None:
        raise RevisionNotFound(f"Invalid rev id: {unquote(revision)}")
    page_size = min(limit or 50, 500)
    start = decode_cursor(cursor)
    history = git.log(sha, limit=page_size + 1, skip=start)
    items = [
        {
            "id": c.sha,
            "title": c.title,
            "message": c.message,
            "date": iso(c.date),
            "authors": [{"user": c.author}],
        }
        for c in history[:page_size]
    ]
    headers = {}
    if len(history) > page_size:
        params = dict(request.query_params)
        params["cursor"] = encode_cursor(start + page_size)
        headers["Link"] = f'<{public_base_url(request)}{request.url.path}?{urlencode(params)}>; rel="next"'
    return JSONResponse(items, headers=headers)


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
        repo = get_readable_repo(session, principal, type, owner, name)
        git = open_git(ctx.settings, repo)
        _revision, sha, path = split_revision(git, raw_tail(request, "/resolve/"))
        entry = git.entry(sha, path.strip("/")) if path.strip("/") else None
        if entry is None or entry.type != "blob":
            message = f"{path} does not exist at {sha[:12]}"
            return JSONResponse(
                {"error": message},
                status_code=404,
                headers={"X-Error-Code": "EntryNotFound", "X-Error-Message": message, "X-Repo-Commit": sha},
            )
        return file_response(request, git, entry, sha)


def file_response(request: Request, git: GitRepo, entry: TreeEntry, sha: str) -> Response:
    media_type = mimetypes.guess_type(entry.path)[0] or "application/octet-stream"
    if ACTIVE_TYPES.match(media_type):
        media_type = "text/plain"
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{entry.oid}"',
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(entry.path.rsplit('/', 1)[-1])}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, max-age=0, must-revalidate",
    }
    size = entry.size
    start, end = 0, size - 1
    status = 200
    if (wanted := request.headers.get("range")) and size:
        parsed = _parse_range(wanted, size)
        if parsed is None:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(
        _limited(git.stream_blob(entry.oid, start), length),
        status_code=status,
        headers=headers,
        media_type=media_type,
    )


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:
        length = int(match[2])
        return (max(0, size - length), size - 1) if length else None
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    return (start, end) if start <= end and start < size else None


def _limited(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    remaining = length
    for chunk in chunks:
        if remaining <= 0:
            break
        yield chunk[:remaining]
        remaining -= len(chunk)


# validate-yaml -----------------------------------------------------------------------------------


class ValidateYaml(BaseModel):
    content: str
    repoType: str = "model"


@router.post("/api/validate-yaml", summary="Check a README's front matter")
def validate_yaml(body: ValidateYaml) -> JSONResponse:
    """200 with `warnings` when the front matter is usable, 400 with `errors` naming the line."""
    try:
        if body.repoType.removesuffix("s") == "space":
            load_space_config(body.content)
        else:
            parse_front_matter(body.content)
    except (ConfigError, FrontMatterError) as exc:
        message = exc.message if isinstance(exc, ConfigError) else str(exc)
        return JSONResponse({"errors": [{"message": message}], "warnings": []}, status_code=400)
    return JSONResponse({"errors": [], "warnings": []})


_add_resolve_routes("/spaces", RepoType.SPACE)
_add_resolve_routes("/datasets", RepoType.DATASET)
_add_resolve_routes("", RepoType.MODEL)
