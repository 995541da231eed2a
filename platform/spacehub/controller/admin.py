"""Operators' actions, one home for the admin API and the dashboard: accounts, organizations and
their members, tokens, failed jobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.worker import Worker
from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.controller.accounts import (
    create_account,
    end_sessions,
    find_account,
    hash_password,
    issue_token,
)
from spacehub.controller.context import ControllerContext
from spacehub.db.models import Account, AccountKind, Build, Membership, Space, Token, TokenRole
from spacehub.errors import BadRequest, NotFound

ROLES = ("admin", "write", "read")


def account_named(session: Session, name: str, kind: AccountKind | None = None) -> Account:
    """The user or organization `name` (NotFound otherwise)."""
    account = find_account(session, name)
    if account is None or (kind is not None and account.kind != kind):
        raise NotFound(f"no {kind.value if kind else 'account'} named {name!r}")
    return account


def create_user(
    session: Session,
    name: str,
    *,
    fullname: str | None = None,
    email: str | None = None,
    is_admin: bool = False,
    password: str | None = None,
) -> Account:
    """A new user; without a password they log in with a write token."""
    return create_account(
        session,
        name,
        fullname=fullname,
        email=email,
        is_admin=is_admin,
        password_hash=hash_password(password) if password else None,
    )


def create_org(session: Session, name: str, fullname: str | None = None) -> Account:
    """A new organization (it owns repositories; its members act for it)."""
    return create_account(session, name, kind=AccountKind.ORG, fullname=fullname)


def set_disabled(session: Session, acting: Account | None, name: str, disabled: bool) -> Account:
    """Disable or enable a user. Disabling takes effect at once: their tokens stop working and
    their browser sessions end."""
    account = account_named(session, name, AccountKind.USER)
    if disabled and acting is not None and account.id == acting.id:
        raise BadRequest("you cannot disable yourself")
    if account.disabled != disabled:
        account.disabled = disabled
        end_sessions(account)
    return account


def add_member(session: Session, org_name: str, user_name: str, role: str | None = None) -> Membership:
    """Make a user a member of an organization: `role` sets their role (`write` for a new member
    when none is given; an existing member keeps theirs)."""
    if role is not None and role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    org = account_named(session, org_name, AccountKind.ORG)
    user = account_named(session, user_name, AccountKind.USER)
    membership = session.get(Membership, (org.id, user.id))
    if membership is None:
        membership = Membership(org_id=org.id, user_id=user.id, role=role or "write")
        session.add(membership)
    elif role is not None:
        membership.role = role
    return membership


def remove_member(session: Session, org_name: str, user_name: str) -> None:
    """End a user's membership of an organization."""
    org = account_named(session, org_name, AccountKind.ORG)
    membership = session.get(Membership, (org.id, account_named(session, user_name).id))
    if membership is None:
        raise NotFound(f"{user_name} is not a member of {org_name}")
    session.delete(membership)


def issue_token_for(session: Session, user_name: str, token_name: str, role: TokenRole) -> tuple[Token, str]:
    """A new token for a user (not a disabled one); the plaintext is returned once."""
    account = account_named(session, user_name, AccountKind.USER)
    if account.disabled:
        raise BadRequest(f"{user_name} is disabled")
    return issue_token(session, account, token_name, role)


# Queues ------------------------------------------------------------------------------------------


@dataclass
class QueueView:
    """One flavor's queue, as RQ's own registries describe it."""

    flavor: str
    workers: int
    waiting: int
    running: list[dict[str, str | None]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


def queue_views(ctx: ControllerContext, failed_shown: int = 10) -> list[QueueView]:
    """Every flavor's queue: its workers, waiting jobs, running jobs and the latest failures."""
    views = []
    for flavor in ctx.flavors:
        queue = ctx.queue(flavor)
        view = QueueView(flavor=flavor, workers=Worker.count(queue=queue), waiting=queue.count)
        for job_id in StartedJobRegistry(queue=queue).get_job_ids():
            try:
                view.running.append(
                    {"id": job_id, "worker": Job.fetch(job_id, connection=ctx.redis).worker_name}
                )
            except NoSuchJobError:
                continue
        for job_id in FailedJobRegistry(queue=queue).get_job_ids()[-failed_shown:]:
            try:
                result = Job.fetch(job_id, connection=ctx.redis).latest_result()
            except NoSuchJobError:
                continue
            error = (result.exc_string or "").strip().splitlines()[-1] if result and result.exc_string else ""
            view.failed.append({"id": job_id, "error": error})
        views.append(view)
    return views


def retry_failed_job(ctx: ControllerContext, flavor: str, job_id: str) -> None:
    """Queue a failed job again."""
    if flavor not in ctx.flavors:
        raise BadRequest(f"unknown flavor {flavor!r}")
    try:
        FailedJobRegistry(queue=ctx.queue(flavor)).requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation):
        raise NotFound(f"{job_id} is no longer among the failed jobs") from None


def all_accounts(session: Session) -> list[Account]:
    """Every user and organization, by name."""
    return list(session.scalars(select(Account).order_by(Account.name)))


def all_tokens(session: Session, newest: int | None = None) -> list[Token]:
    """Every token of every user, revoked ones included: oldest first, or the `newest` few."""
    if newest is None:
        return list(session.scalars(select(Token).order_by(Token.id)))
    return list(session.scalars(select(Token).order_by(Token.id.desc()).limit(newest)))


def all_spaces(session: Session) -> list[Space]:
    """Every space."""
    return list(session.scalars(select(Space)))


def recent_builds(session: Session, count: int = 50) -> list[Build]:
    """The latest builds, newest first."""
    return list(session.scalars(select(Build).order_by(Build.id.desc()).limit(count)))


def build_of(session: Session, build_id: int) -> tuple[Build, Space]:
    """A build and its space; NotFound when either is gone."""
    build = session.get(Build, build_id)
    space = session.get(Space, build.space_id) if build else None
    if build is None or space is None:
        raise NotFound(f"no build {build_id}")
    return build, space


def space_by_id(session: Session, space_id: int) -> Space:
    """A space by its id; NotFound when it is gone."""
    space = session.get(Space, space_id)
    if space is None:
        raise NotFound(f"no space {space_id}")
    return space
