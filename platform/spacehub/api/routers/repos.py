"""Repositories of every type: create, delete, info (the Hub's /api/repos and /api/{type}s)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from spacehub.controller.access import can_write
from spacehub.controller.context import ControllerContext
from spacehub.controller.listing import PAGE_SIZE, decode_cursor, encode_cursor, visible_repos
from spacehub.controller.repos import (
    copy_repo,
    create_repo,
    get_readable_repo,
    move_repo,
    parse_repo_type,
)
from spacehub.controller.serializers import repo_info
from spacehub.controller.space_repos import after_move, duplicate_space, remove_repo
from spacehub.controller.space_settings import check_hardware, set_private, set_visibility
from spacehub.controller.spaces import publish
from spacehub.controller.volumes import set_volumes
from spacehub.db.models import Repo, RepoType
from spacehub.errors import BadRequest, Conflict, Forbidden, RevisionNotFound, Unsupported
from spacehub.http.deps import CtxDep, PrincipalDep, SessionDep, UserDep
from spacehub.http.errors import error_response
from spacehub.http.urls import next_link, public_base_url, repo_url, space_app_url

router = APIRouter(tags=["repos"])


class RepoTypePlural(StrEnum):
    models = "models"
    datasets = "datasets"
    spaces = "spaces"

    @property
    def repo_type(self) -> RepoType:
        """The repository type this plural path segment names."""
        return RepoType(self.value.removesuffix("s"))


class RepoCreate(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Repository name, without the namespace.")
    organization: str | None = Field(None, description="Namespace (user or organization); default: yours.")
    type: str = Field("model", description="model, dataset or space.")
    private: bool | None = Field(None, description="Older clients' way of asking for a private repo.")
    visibility: Literal["public", "private", "protected"] | None = None
    sdk: str | None = Field(None, description="Spaces: gradio, streamlit, docker or static.")
    hardware: str | None = Field(None, description="Spaces: hardware flavor (default cpu-basic).")
    volumes: list[dict[str, Any]] | None = Field(
        None, description="Spaces: buckets and repositories to mount (as PUT /api/spaces/{id}/volumes)."
    )


class RepoCreated(BaseModel):
    url: str
    name: str
    id: str


class RepoDelete(BaseModel):
    name: str
    organization: str | None = None
    type: str = "model"


@router.post("/api/repos/create", response_model=RepoCreated, responses={409: {"description": "exists"}})
def create(body: RepoCreate, request: Request, ctx: CtxDep, session: SessionDep, principal: UserDep) -> Any:
    """Create a model, dataset or space repository (empty; push or commit to it)."""
    repo_type = parse_repo_type(body.type)
    if body.visibility == "protected" and repo_type != RepoType.SPACE:
        raise BadRequest("only spaces can be protected (their app public, their repository private)")
    check_hardware(ctx, body.hardware)
    private = body.visibility == "private" if body.visibility else bool(body.private)
    name = body.name
    owner = body.organization
    if "/" in name and owner is None:
        owner, name = name.split("/", 1)
    base = public_base_url(request)
    try:
        repo = create_repo(
            session,
            ctx.settings,
            principal,
            type=repo_type,
            owner=owner,
            name=name,
            private=private,
            sdk=body.sdk,
            hardware=body.hardware,
        )
    except Conflict as exc:
        existing_owner = owner or principal.name
        url = f"{base}/{'' if repo_type == RepoType.MODEL else repo_type.value + 's/'}{existing_owner}/{name}"
        return error_response(exc.status_code, exc.message, exc.error_code, url=url)
    if body.volumes and repo.space is not None:
        set_volumes(ctx, session, principal, repo.space, body.volumes)
    if body.visibility == "protected":
        set_visibility(ctx, repo, "protected")
    elif repo.space is not None:
        publish(ctx, repo.space)
    return RepoCreated(url=repo_url(base, repo), name=repo.full_name, id=repo.full_name)


@router.delete("/api/repos/delete", status_code=200)
def delete(body: RepoDelete, ctx: CtxDep, session: SessionDep, principal: UserDep) -> dict[str, Any]:
    """Delete a repository; for a space also its app, route, builds and logs."""
    repo_type = parse_repo_type(body.type)
    name, owner = body.name, body.organization
    if "/" in name and owner is None:
        owner, name = name.split("/", 1)
    repo = get_readable_repo(session, principal, repo_type, owner or principal.name or "", name)
    if not can_write(session, principal, repo):
        raise Forbidden(f"you may not delete {repo.full_name}")
    remove_repo(ctx, session, repo)
    return {}


class EnvEntryIn(BaseModel):
    key: str
    value: str = ""
    description: str | None = None


class RepoDuplicate(BaseModel):
    model_config = ConfigDict(extra="allow")

    repository: str = Field(description="owner/name of the copy")
    private: bool | None = None
    visibility: Literal["public", "private"] | None = None
    hardware: str | None = Field(None, description="Spaces: the copy's hardware flavor.")
    sleepTimeSeconds: int | None = None
    secrets: list[EnvEntryIn] | None = Field(
        None, description="Spaces: secrets of the copy (none are copied)."
    )
    variables: list[EnvEntryIn] | None = Field(
        None, description="Spaces: variables added to the copied ones."
    )
    volumes: list[dict[str, Any]] | None = None


@router.post("/api/{type_plural}/{owner}/{name}/duplicate", summary="Copy a repository (with its history)")
def duplicate(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    body: RepoDuplicate,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: UserDep,
) -> dict[str, Any]:
    """Spaces keep their variables (not their secrets) and are deployed at once."""
    source = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    if "/" not in body.repository:
        raise BadRequest("`repository` must be owner/name")
    to_owner, to_name = body.repository.split("/", 1)
    private = body.visibility == "private" if body.visibility else bool(body.private)
    if source.space is not None:
        copy = duplicate_space(
            ctx,
            session,
            principal,
            source.space,
            to_owner=to_owner,
            to_name=to_name,
            private=private,
            hardware=body.hardware,
            sleep_time=body.sleepTimeSeconds,
            secrets=[(s.key, s.value, s.description) for s in body.secrets or []],
            variables=[(v.key, v.value, v.description) for v in body.variables or []],
        )
        if body.volumes and copy.space is not None:
            set_volumes(ctx, session, principal, copy.space, body.volumes)
    else:
        copy = copy_repo(
            ctx.settings, session, principal, source, to_owner=to_owner, to_name=to_name, private=private
        )
    return {"url": repo_url(public_base_url(request), copy)}


class RepoMove(BaseModel):
    fromRepo: str
    toRepo: str
    type: str = "model"


@router.post("/api/repos/move", summary="Rename a repository or move it to another namespace")
def move(body: RepoMove, ctx: CtxDep, session: SessionDep, principal: UserDep) -> dict[str, Any]:
    """Rename a repository or move it to another namespace; a moved space restarts at its new URL."""
    repo_type = parse_repo_type(body.type)
    if "/" not in body.fromRepo or "/" not in body.toRepo:
        raise BadRequest("fromRepo and toRepo are owner/name")
    owner, name = body.fromRepo.split("/", 1)
    repo = get_readable_repo(session, principal, repo_type, owner, name)
    if not can_write(session, principal, repo):
        raise Forbidden(f"you may not move {repo.full_name}")
    old_subdomain = repo.space.subdomain if repo.space else None
    to_owner, to_name = body.toRepo.split("/", 1)
    move_repo(session, principal, repo, to_owner, to_name)
    if repo.space is not None and old_subdomain is not None:
        after_move(ctx, session, repo.space, old_subdomain)
    return {}


class RepoSettings(BaseModel):
    private: bool | None = None
    visibility: Literal["public", "private", "protected"] | None = None
    gated: Literal["auto", "manual", False] | None = None


@router.put("/api/{type_plural}/{owner}/{name}/settings", summary="Change visibility")
def update_settings(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    body: RepoSettings,
    ctx: CtxDep,
    session: SessionDep,
    principal: UserDep,
) -> dict[str, Any]:
    """Make a repository public, private or (a space) protected (`visibility`, or the older
    `private`); gating is not offered."""
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    if not can_write(session, principal, repo):
        raise Forbidden(f"you may not change the settings of {repo.full_name}")
    if body.gated not in (None, False):
        raise Unsupported("gated repositories are not offered")
    if body.visibility is not None:
        set_visibility(ctx, repo, body.visibility)
    elif body.private is not None:
        set_private(ctx, repo, body.private)
    return {}


@router.get("/api/{type_plural}", summary="List repositories")
def list_repos(
    type_plural: RepoTypePlural,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    author: str | None = None,
    search: str | None = None,
    filter: list[str] | None = Query(None),
    sort: str | None = None,
    direction: int = -1,
    limit: int | None = Query(None, ge=1),
    full: bool = False,
    cursor: str | None = None,
) -> Response:
    """Repositories visible to the caller, filtered and sorted as on the Hub, paginated with a
    `Link: <...>; rel="next"` header."""
    page_size = min(limit or PAGE_SIZE, PAGE_SIZE)
    offset = decode_cursor(cursor)
    repos = visible_repos(
        session,
        principal,
        type_plural.repo_type,
        author=author,
        search=search,
        tags=filter or [],
        sort=sort,
        descending=direction != 1,
        offset=offset,
        limit=page_size + 1,  # one more, to know whether another page follows
    )
    page = repos[:page_size]
    items = [_info(ctx, repo, request, None, with_files=full, from_git=full) for repo in page]
    headers = {}
    remaining = (limit - page_size) if limit else None
    if len(repos) > page_size and (remaining is None or remaining > 0):
        more = {"limit": str(remaining)} if remaining is not None else {}
        headers["Link"] = next_link(request, encode_cursor(offset + page_size), **more)
    return JSONResponse(items, headers=headers)


@router.get("/api/{type_plural}/{owner}/{name}", summary="Repository info")
def info(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """A repository's info at its head: what huggingface_hub's ModelInfo, DatasetInfo and SpaceInfo read."""
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    return _info(ctx, repo, request, None)


@router.get(
    "/api/{type_plural}/{owner}/{name}/revision/{revision:path}", summary="Repository info at a revision"
)
def info_at_revision(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    revision: str,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """A repository's info at a branch, tag or commit; 404 when the revision does not exist."""
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    return _info(ctx, repo, request, revision)


def _info(
    ctx: ControllerContext,
    repo: Repo,
    request: Request,
    revision: str | None,
    with_files: bool = True,
    from_git: bool = True,
) -> dict[str, Any]:
    base = public_base_url(request)
    host = space_app_url(ctx.settings, repo.space, base) if repo.space is not None else None
    info = repo_info(
        ctx, repo, base_url=base, revision=revision, app_host=host, with_files=with_files, from_git=from_git
    )
    if revision is not None and info["sha"] is None:
        raise RevisionNotFound(f"Invalid rev id: {revision}")
    return info
