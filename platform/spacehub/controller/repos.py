"""Repositories of every type: one code path for models, datasets and spaces."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spacehub.config import Settings
from spacehub.controller.access import can_read, may_act_as
from spacehub.controller.accounts import Principal, find_account, validate_name
from spacehub.db.models import Account, Like, Repo, RepoType, Space
from spacehub.errors import BadRequest, Conflict, Forbidden, RepoNotFound, Unauthorized
from spacehub.queue.flavors import DEFAULT_FLAVOR
from spacehub.repos.git import GitRepo
from spacehub.spec.config import SDKS

URL_PREFIXES = {RepoType.MODEL: "", RepoType.DATASET: "datasets/", RepoType.SPACE: "spaces/"}


def parse_repo_type(value: str | None) -> RepoType:
    """The repository type a path or body names (`model`, `dataset`, `space`, plural or not)."""
    try:
        return RepoType((value or "model").removesuffix("s"))
    except ValueError:
        raise BadRequest(f"unknown repository type {value!r}: use model, dataset or space") from None


def git_path(settings: Settings, repo: Repo) -> Path:
    """Repositories live under their id, so renames and moves never touch the disk."""
    return settings.repos_dir / f"{repo.id}.git"


def open_git(settings: Settings, repo: Repo) -> GitRepo:
    """The repository's bare git repository on disk."""
    return GitRepo(git_path(settings, repo))


def find_repo(session: Session, type: RepoType, owner: str, name: str) -> Repo | None:
    """The repository `owner/name` of `type`, compared without case, if it exists."""
    account = find_account(session, owner)
    if account is None:
        return None
    return session.scalar(
        select(Repo).where(
            Repo.type == type, Repo.owner_id == account.id, func.lower(Repo.name) == name.lower()
        )
    )


def get_readable_repo(session: Session, principal: Principal, type: RepoType, owner: str, name: str) -> Repo:
    """The repository, if it exists and `principal` may see it; otherwise RepoNotFound either way."""
    repo = find_repo(session, type, owner, name)
    if repo is None or not can_read(session, principal, repo):
        raise RepoNotFound(f"Repository {owner}/{name} not found")
    return repo


def get_space_for_app(session: Session, principal: Principal, owner: str, name: str) -> Repo:
    """A space whose app `principal` may open: one it may read, or a protected one (its app is
    public, its repository private); RepoNotFound otherwise."""
    repo = find_repo(session, RepoType.SPACE, owner, name)
    protected = repo is not None and repo.space is not None and repo.space.protected
    if repo is None or not (protected or can_read(session, principal, repo)):
        raise RepoNotFound(f"Repository {owner}/{name} not found")
    return repo


def allocate_subdomain(session: Session, owner: str, name: str) -> str:
    """A DNS label for the app: `{owner}-{name}`, lower-cased, unique, at most 63 characters."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"{owner}-{name}".lower()).strip("-")
    base = re.sub(r"-{2,}", "-", base)
    if len(base) > 63:
        base = base[:54].rstrip("-") + "-" + hashlib.sha1(base.encode()).hexdigest()[:8]
    candidate, suffix = base, 1
    while session.scalar(select(Space.repo_id).where(Space.subdomain == candidate)) is not None:
        suffix += 1
        candidate = f"{base[: 63 - len(str(suffix)) - 1]}-{suffix}"
    return candidate


def create_repo(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    type: RepoType,
    owner: str | None,
    name: str,
    private: bool = False,
    sdk: str | None = None,
    hardware: str | None = None,
) -> Repo:
    """Create the repository record and its empty bare git repository."""
    if principal.account is None:
        raise Unauthorized("creating a repository needs a token")
    if not principal.can_write:
        raise Forbidden("this token is read-only: creating a repository needs a write token")
    validate_name(name, "repository name")
    owner_account = find_account(session, owner) if owner else principal.account
    if owner_account is None or not may_act_as(session, principal, owner_account, write=True):
        raise Forbidden(f"you cannot create repositories in the namespace {owner!r}")
    if find_repo(session, type, owner_account.name, name) is not None:
        raise Conflict(f"You already created this {type.value} repo: {owner_account.name}/{name}")
    repo = Repo(type=type, owner=owner_account, name=name, private=private)
    session.add(repo)
    session.flush()
    if type == RepoType.SPACE:
        if sdk not in SDKS:
            raise BadRequest(f"a space needs `sdk`: one of {', '.join(SDKS)} (got {sdk!r})")
        repo.space = Space(
            sdk=sdk,
            subdomain=allocate_subdomain(session, owner_account.name, name),
            hardware=hardware or DEFAULT_FLAVOR,
        )
        session.flush()
    path = git_path(settings, repo)
    if path.exists():  # left behind by a crash between here and a rollback
        shutil.rmtree(path)
    GitRepo.init_bare(path)
    return repo


def delete_repo_storage(settings: Settings, repo: Repo) -> None:
    """Delete the repository's files from disk (what is already gone is fine)."""
    shutil.rmtree(git_path(settings, repo), ignore_errors=True)


def move_repo(session: Session, principal: Principal, repo: Repo, to_owner: str, to_name: str) -> None:
    """Rename a repository or move it to another namespace (its files stay where they are)."""
    validate_name(to_name, "repository name")
    owner = find_account(session, to_owner)
    if owner is None or not may_act_as(session, principal, owner, write=True):
        raise Forbidden(f"you cannot create repositories in the namespace {to_owner!r}")
    existing = find_repo(session, repo.type, owner.name, to_name)
    if existing is not None and existing.id != repo.id:
        raise Conflict(f"{owner.name}/{to_name} already exists")
    repo.owner, repo.name = owner, to_name
    session.flush()


def copy_repo(
    settings: Settings,
    session: Session,
    principal: Principal,
    source: Repo,
    *,
    to_owner: str,
    to_name: str,
    private: bool,
    hardware: str | None = None,
) -> Repo:
    """A new repository of the same type with the source's whole history (branches and tags)."""
    copy = create_repo(
        session,
        settings,
        principal,
        type=source.type,
        owner=to_owner,
        name=to_name,
        private=private,
        sdk=source.space.sdk if source.space else None,
        hardware=hardware or (source.space.hardware if source.space else None),
    )
    GitRepo(git_path(settings, copy)).run(
        "fetch",
        "--quiet",
        str(git_path(settings, source)),
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
    )
    copy.card = dict(source.card or {})
    return copy


def toggle_like(session: Session, account: Account, repo: Repo) -> bool:
    """Like the repository, or take the like back when `account` already likes it; whether it now does."""
    existing = session.get(Like, (repo.id, account.id))
    if existing is None:
        session.add(Like(repo_id=repo.id, account_id=account.id))
        repo.likes += 1
        return True
    session.delete(existing)
    repo.likes = max(0, repo.likes - 1)
    return False


def likes(session: Session, account: Account, repo: Repo) -> bool:
    """Whether `account` likes the repository."""
    return session.get(Like, (repo.id, account.id)) is not None
