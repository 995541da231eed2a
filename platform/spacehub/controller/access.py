"""Who may read and write which repository. Private repositories are invisible to everyone else:
callers turn a failed read check into the same 404 as a repository that does not exist."""

from __future__ import annotations

from sqlalchemy.orm import Session

from spacehub.config import Settings
from spacehub.controller.accounts import Principal, authenticate, is_member, session_principal
from spacehub.db.models import Account, AccountKind, Bucket, Repo, Space
from spacehub.signing import derive_key, sign

APP_LINK_SECONDS = 3600  # the longest an app link lives (it also ends with its user's session)


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


def can_read(session: Session, principal: Principal, repo: Repo | Bucket) -> bool:
    """Whether `principal` may see `repo` or a bucket (public, or theirs or their organization's)."""
    return not repo.private or (
        principal.can_read_private and may_act_as(session, principal, repo.owner, write=False)
    )


def can_write(session: Session, principal: Principal, repo: Repo | Bucket) -> bool:
    """Whether `principal` holds a write token for the owner of `repo` (or of a bucket)."""
    return principal.can_write and may_act_as(session, principal, repo.owner, write=True)


def app_link(settings: Settings, principal: Principal, repo: Repo, expires_in: int) -> tuple[str, int]:
    """A short-lived signed credential that opens `repo`'s app (the `__sign` query parameter), so
    that a browser opens a private app without the user's token ever reaching the app; returns the
    token and its expiry time. The edge checks it (proxy/auth.py), and asks whether its user is
    still in the session it was issued in."""
    account = principal.account
    claims = {
        "sub": f"/spaces/{repo.full_name}",
        "space": repo.id,
        "user": principal.name,
        "uid": account.id if account else None,
        "epoch": account.session_epoch if account else None,
    }
    return sign(claims, derive_key(settings.resolved_internal_token), expires_in)


def may_open_app(session: Session, space_id: int, token: str, holder: str) -> bool:
    """Whether a user may open a private space's app: by their `token`, else by the signed-in
    session (`account:epoch`) a signed app link was issued in. The edge asks, and caches the answer
    briefly."""
    space = session.get(Space, space_id)
    if space is None:
        return False
    principal = authenticate(session, token) if token else session_principal(session, holder)
    return principal is not None and can_read(session, principal, space.repo)
