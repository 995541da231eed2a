"""FastAPI dependencies the API and the pages share: the controller context, a database session,
and who is calling (a token, or a browser's signed-in session)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from spacehub.controller.accounts import ANONYMOUS, Principal, authenticate
from spacehub.controller.context import ControllerContext
from spacehub.db.models import Account, TokenRole
from spacehub.errors import Forbidden, Unauthorized
from spacehub.http.sessions import SESSION_COOKIE, read_session
from spacehub.signing import same_secret

INTERNAL = Principal(account=None, internal=True)


def get_ctx(request: Request) -> ControllerContext:
    """The controller's services, set up once per process."""
    ctx: ControllerContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[ControllerContext, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    """A database session for one request, committed before its response."""
    with ctx.session() as session:
        yield session


# Committed when the endpoint returns, before the response goes out: a client that got its answer
# (or a browser following a form's redirect) must find what it changed, and a failed commit must
# answer as an error, not as the success it would have been.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str | None:
    """The token of a request: `Authorization: Bearer`, or HTTP Basic's password (git)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Invalid credentials in Authorization header") from None
        _user, _, password = decoded.partition(":")
        return password or None
    return None


def browser_account(ctx: ControllerContext, session: Session, request: Request) -> Account | None:
    """The signed-in account of a browser request, if its session is valid and the account enabled."""
    found = read_session(ctx.settings.resolved_internal_token, request.cookies.get(SESSION_COOKIE))
    if found is None:
        return None
    account = session.get(Account, found[0])
    if account is None or account.disabled or account.session_epoch != found[1]:
        return None
    return account


def resolve_principal(ctx: ControllerContext, session: Session, token: str | None) -> Principal:
    """Who holds `token`: anonymous without one, spacehub's own components, or an account."""
    if token is None:
        return ANONYMOUS
    if same_secret(token, ctx.settings.resolved_internal_token):
        return INTERNAL
    principal = authenticate(session, token)
    if principal is None:
        raise Unauthorized("Invalid credentials in Authorization header")
    return principal


def request_principal(ctx: ControllerContext, session: Session, request: Request) -> Principal:
    """Who a request comes from: its token, or, with read rights only, the browser session of the
    hub's pages: for GET and HEAD (their scripts read runtimes and logs), and for requests their
    scripts mark with `X-Requested-With: spacehub` (the model pages' try-it form), a header no
    other site can send (it needs a CORS preflight the hub never grants). Every change goes
    through forms with CSRF tokens."""
    token = bearer_token(request)
    marked = request.headers.get("x-requested-with") == "spacehub"
    if token is None and (request.method in ("GET", "HEAD") or marked):
        account = browser_account(ctx, session, request)
        if account is not None:
            return Principal(account=account, role=TokenRole.READ)
    return resolve_principal(ctx, session, token)


def get_principal(request: Request, ctx: CtxDep, session: SessionDep) -> Principal:
    """Who a request comes from (see `request_principal`)."""
    return request_principal(ctx, session, request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_user(principal: PrincipalDep) -> Principal:
    """The caller, who must have a token."""
    if principal.account is None and not principal.internal:
        raise Unauthorized("this endpoint needs a token (Authorization: Bearer <token>)")
    return principal


UserDep = Annotated[Principal, Depends(require_user)]


def require_admin(principal: UserDep) -> Principal:
    """The caller, who must be an administrator."""
    if not principal.is_admin:
        raise Forbidden("this endpoint is for administrators")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def require_internal(principal: PrincipalDep) -> Principal:
    """The caller, who must be one of spacehub's own components (internal token)."""
    if not principal.internal:
        raise Forbidden("this endpoint is for spacehub's own components")
    return principal


InternalDep = Annotated[Principal, Depends(require_internal)]
