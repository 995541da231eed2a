"""Repositories of every type: create, delete, info (the Hub's /api/repos and /api/{type}s)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from spacehub.api.deps import CtxDep, PrincipalDep, SessionDep, UserDep
from spacehub.api.serializers import repo_info
from spacehub.api.urls import app_url, public_base_url, repo_url
from spacehub.controller.access import can_write
from spacehub.controller.context import ControllerContext
from spacehub.controller.repos import create_repo, delete_repo_storage, get_readable_repo, parse_repo_type
from spacehub.controller.spaces import delete_space, publish
from spacehub.db.models import Repo, RepoType
from spacehub.errors import BadRequest, Conflict, Forbidden, RevisionNotFound

router = APIRouter(tags=["repos"])


class RepoTypePlural(StrEnum):
    models = "models"
    datasets = "datasets"
    spaces = "spaces"

    @property
    def repo_type(self) -> RepoType:
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
    if body.visibility == "protected":
        raise BadRequest("`protected` visibility is not supported: use public or private")
    if body.hardware is not None and body.hardware not in ctx.flavors:
        raise BadRequest(f"unknown hardware {body.hardware!r}; see GET /api/spaces/hardware")
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
        return JSONResponse(
            {"error": exc.message, "url": url}, status_code=409, headers={"X-Error-Message": exc.message}
        )
    if repo.space is not None:
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


def remove_repo(ctx: ControllerContext, session: Session, repo: Repo) -> None:
    if repo.space is not None:
        delete_space(ctx, session, repo.space)
    session.delete(repo)
    session.flush()
    delete_repo_storage(ctx.settings, repo)


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
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    return _info(ctx, repo, request, revision)


def _info(ctx: ControllerContext, repo: Repo, request: Request, revision: str | None) -> dict[str, Any]:
    base = public_base_url(request)
    host = app_url(ctx.settings, repo.space, base) if repo.space is not None else None
    info = repo_info(ctx, repo, base_url=base, revision=revision, app_host=host)
    if revision is not None and info["sha"] is None:
        raise RevisionNotFound(f"Invalid rev id: {revision}")
    return info
