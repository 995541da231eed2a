"""Repositories and spaces in the JSON shapes of the Hugging Face Hub API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.controller.context import ControllerContext
from spacehub.controller.listing import repo_tags
from spacehub.controller.repos import open_git
from spacehub.controller.spaces import effective_sleep_time, is_serving, tier_of
from spacehub.db.models import Repo, RepoType, Space, SpaceSecret, SpaceVariable
from spacehub.repos.git import GitError
from spacehub.stages import ERROR_STAGES, Stage


def iso(value: datetime | None) -> str | None:
    """A UTC datetime in the Hub's ISO 8601 form (milliseconds, `Z`); None stays None."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def space_runtime(ctx: ControllerContext, space: Space, app_host: str | None = None) -> dict[str, Any]:
    """The `runtime` object (`GET /api/spaces/{id}/runtime`)."""
    stage = Stage(space.stage)
    serving = is_serving(space)
    runtime: dict[str, Any] = {
        "stage": stage.value,
        "hardware": {"current": space.hardware if serving else None, "requested": space.hardware},
        "storage": None,
        "gcTimeout": effective_sleep_time(ctx, space),
        "replicas": {"current": 1 if serving else 0, "requested": 1},
        "devMode": False,
        "sha": space.running_sha,
        "errorMessage": space.message if stage in ERROR_STAGES else None,
        "message": space.message,
        "domains": [],
        "tier": tier_of(ctx, space),
        "volumes": space.volumes,
    }
    if app_host:
        runtime["domains"] = [
            {"domain": app_host.split("://", 1)[-1].rstrip("/"), "isCustom": False, "stage": "READY"}
        ]
    return runtime


def repo_info(
    ctx: ControllerContext,
    repo: Repo,
    *,
    base_url: str,
    revision: str | None = None,
    app_host: str | None = None,
    with_files: bool = True,
    from_git: bool = True,
) -> dict[str, Any]:
    """`GET /api/{type}s/{id}`: what huggingface_hub's ModelInfo/DatasetInfo/SpaceInfo read.
    Without `from_git` (listings), only what the database knows: no files, the last push's time."""
    space = repo.space
    last_modified = repo.updated_at
    siblings: list[dict[str, Any]] = []
    sha = space.desired_sha if space is not None else None
    if from_git:
        git = open_git(ctx.settings, repo)
        sha = git.resolve(revision) if revision else git.head()
        if sha is not None:
            try:
                last_modified = git.commit_info(sha).date
                if with_files:
                    siblings = [
                        {"rfilename": e.path, "size": e.size, "blobId": e.oid} for e in git.files(sha)
                    ]
            except GitError:
                pass
    card = dict(repo.card or {})
    info: dict[str, Any] = {
        "_id": str(repo.id),
        "id": repo.full_name,
        "author": repo.owner.name,
        "sha": sha,
        "createdAt": iso(repo.created_at),
        "lastModified": iso(last_modified),
        "private": repo.private,
        "gated": False,
        "disabled": False,
        "likes": repo.likes,
        "tags": repo_tags(repo),
        "cardData": card,
        "siblings": siblings,
    }
    if repo.type == RepoType.SPACE and space is not None:
        info.update(
            sdk=space.sdk,
            subdomain=space.subdomain,
            host=app_host,
            runtime=space_runtime(ctx, space, app_host),
        )
    return info


def variables_json(session: Session, space: Space) -> dict[str, dict[str, Any]]:
    """The space's variables by key, with their values, descriptions and update times."""
    rows = session.scalars(
        select(SpaceVariable).where(SpaceVariable.space_id == space.repo_id).order_by(SpaceVariable.key)
    )
    return {
        r.key: {"value": r.value, "description": r.description, "updatedAt": iso(r.updated_at)} for r in rows
    }


def secrets_json(session: Session, space: Space) -> dict[str, dict[str, Any]]:
    """Secrets without their values: those never leave the platform's internals."""
    rows = session.scalars(
        select(SpaceSecret).where(SpaceSecret.space_id == space.repo_id).order_by(SpaceSecret.key)
    )
    return {r.key: {"key": r.key, "description": r.description, "updatedAt": iso(r.updated_at)} for r in rows}
