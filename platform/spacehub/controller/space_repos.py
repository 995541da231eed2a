"""Spaces as repositories: created from a starter, duplicated, renamed or moved, deleted."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.controller import environment
from spacehub.controller.accounts import Principal
from spacehub.controller.context import ControllerContext
from spacehub.controller.inference import server_of
from spacehub.controller.logs import build_log_path
from spacehub.controller.repos import (
    allocate_subdomain,
    copy_repo,
    create_repo,
    delete_repo_storage,
    open_git,
)
from spacehub.controller.space_settings import check_hardware
from spacehub.controller.spaces import (
    clear_live,
    handle_push,
    once_committed,
    publish,
    redeploy_if_deployed,
    supersede_active_builds,
    validate_sleep_time,
)
from spacehub.db.models import Build, Repo, RepoType, Space, SpaceSecret, SpaceVariable
from spacehub.errors import BadRequest
from spacehub.repos.commits import commit_files
from spacehub.spec.frontmatter import parse_front_matter


def delete_space(ctx: ControllerContext, session: Session, space: Space) -> None:
    """Forget a space everywhere but the database row (the caller deletes it): builds are
    cancelled, the route and logs removed; agents remove its containers when they see the route
    gone."""
    supersede_active_builds(ctx, session, space)
    subdomain, keys = space.subdomain, [ctx.keys.run_log(space.repo_id)]
    for build_id in session.scalars(select(Build.id).where(Build.space_id == space.repo_id)):
        keys.append(ctx.keys.build_log(build_id))
        build_log_path(ctx.settings, build_id).unlink(missing_ok=True)

    def forget() -> None:
        ctx.routes.remove_space(subdomain)
        ctx.redis.delete(*keys)

    once_committed(space, forget)


def remove_repo(ctx: ControllerContext, session: Session, repo: Repo) -> None:
    """Delete a repository of any type, its space (if any) and its storage; a model's server too."""
    if repo.space is not None:
        delete_space(ctx, session, repo.space)
    server = server_of(session, repo) if repo.type == RepoType.MODEL else None
    if server is not None:
        remove_repo(ctx, session, server)
    session.delete(repo)
    session.flush()
    delete_repo_storage(ctx.settings, repo)


def duplicate_space(
    ctx: ControllerContext,
    session: Session,
    principal: Principal,
    source: Space,
    *,
    to_owner: str,
    to_name: str,
    private: bool,
    hardware: str | None,
    sleep_time: int | None,
    secrets: list[tuple[str, str, str | None]],
    variables: list[tuple[str, str, str | None]],
) -> Repo:
    """A new space with the source's history and variables (secrets are not copied: only those
    the caller passes), deployed at once."""
    check_hardware(ctx, hardware)
    validate_sleep_time(sleep_time)
    copy = copy_repo(
        ctx.settings,
        session,
        principal,
        source.repo,
        to_owner=to_owner,
        to_name=to_name,
        private=private,
        hardware=hardware,
    )
    space = copy.space
    assert space is not None
    space.sleep_time = sleep_time if sleep_time is not None else source.sleep_time
    copied = {
        v.key: (v.value, v.description)
        for v in session.scalars(select(SpaceVariable).where(SpaceVariable.space_id == source.repo_id))
    }
    copied.update({key: (value, description) for key, value, description in variables})
    for key, (value, description) in copied.items():
        environment.upsert(session, SpaceVariable, space, key, value, description)
    for key, value, description in secrets:
        environment.upsert(session, SpaceSecret, space, key, value, description, ctx.vault.seal)
    publish(ctx, space)
    handle_push(ctx, session, copy)
    return copy


def starters(templates_dir: Path) -> dict[str, dict[str, str]]:
    """The starter apps a space can be created from: folder name -> title, description, SDK."""
    found = {}
    for folder in sorted(templates_dir.iterdir()):
        readme = folder / "starter" / "README.md"
        if readme.is_file():
            data = parse_front_matter(readme.read_text()).data
            found[folder.name] = {
                "label": str(data.get("title") or folder.name),
                "description": str(data.get("short_description") or ""),
                "sdk": str(data.get("sdk") or "gradio"),
            }
    return found


def create_from_starter(
    ctx: ControllerContext,
    session: Session,
    principal: Principal,
    *,
    owner: str,
    name: str,
    starter: str,
    hardware: str,
    private: bool,
) -> Repo:
    """A new space whose first commit is a starter app from templates/<starter>/starter."""
    available = starters(ctx.settings.templates_dir)
    if starter not in available:
        raise BadRequest(f"no starter named {starter!r}")
    repo = create_repo(
        session,
        ctx.settings,
        principal,
        type=RepoType.SPACE,
        owner=owner,
        name=name,
        private=private,
        sdk=available[starter]["sdk"],
        hardware=hardware,
    )
    folder = ctx.settings.templates_dir / starter / "starter"
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    commit_files(
        open_git(ctx.settings, repo),
        files,
        f"Start from the {available[starter]['label']} starter",
        principal.author,
    )
    assert repo.space is not None
    publish(ctx, repo.space)
    handle_push(ctx, session, repo)
    return repo


def after_move(ctx: ControllerContext, session: Session, space: Space, old_subdomain: str) -> None:
    """A moved or renamed space gets the app URL of its new name and restarts with the new
    SPACE_ID; the old address stops answering."""
    once_committed(space, lambda: ctx.routes.remove_space(old_subdomain))
    space.subdomain = allocate_subdomain(session, space.repo.owner.name, space.repo.name)
    clear_live(space)
    publish(ctx, space)
    redeploy_if_deployed(ctx, session, space)
