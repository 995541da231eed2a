"""Who may read and write which repository. Private repositories are invisible to everyone else:
callers turn a failed read check into the same 404 as a repository that does not exist."""

from __future__ import annotations

from sqlalchemy.orm import Session

from spacehub.controller.accounts import Principal, is_member
from spacehub.db.models import Account, AccountKind, Repo


def may_act_as(session: Session, principal: Principal, owner: Account, *, write: bool) -> bool:
    """Whether `principal` may act on what `owner` (a user or an organization) owns."""
    if principal.is_admin:
        return True
    account = principal.account
    if account is None:
        return False
    if account.id == owner.id:
        return True
    return owner.kind == AccountKind.ORG and is_member(session, owner, account, write=write)


def can_read(session: Session, principal: Principal, repo: Repo) -> bool:
    return not repo.private or may_act_as(session, principal, repo.owner, write=False)


def can_write(session: Session, principal: Principal, repo: Repo) -> bool:
    return principal.can_write and may_act_as(session, principal, repo.owner, write=True)
