"""Signing up, logging in and out, and a user's access tokens."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from spacehub.controller.accounts import (
    MIN_PASSWORD,
    create_account,
    end_sessions,
    find_account,
    hash_password,
    issue_token,
    proves_identity,
    revoke_token,
    set_password,
    tokens_of,
)
from spacehub.db.models import TokenRole
from spacehub.errors import BadRequest, Forbidden, SpacehubError
from spacehub.web.deps import BrowserDep

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only redirect to paths of this site after logging in."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/spaces"


@router.get("/login", response_class=HTMLResponse)
def login_page(browser: BrowserDep, next: str = "/spaces") -> Response:
    """The login form; `next` is where to go after signing in."""
    return browser.render("login.html", next=safe_next(next))


@router.post("/login")
async def login(browser: BrowserDep) -> Response:
    """Sign in with a user name and password; the form again, with a problem, when they do not match."""
    form = await browser.check_form()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    if not browser.ctx.logins.attempt(name, browser.client_address):
        return browser.render(
            "login.html",
            status_code=429,
            next=safe_next(str(form.get("next", ""))),
            name=name,
            problem="Too many login attempts: wait a minute, then try again.",
        )
    account = find_account(browser.session, name)
    if account is None or account.disabled or not proves_identity(browser.session, account, password):
        return browser.render(
            "login.html",
            status_code=400,
            next=safe_next(str(form.get("next", ""))),
            name=name,
            problem="Wrong user name or password (or the account is disabled).",
        )
    browser.sign_in(account)
    return browser.redirect(safe_next(str(form.get("next", ""))), notice=f"Welcome, {account.name}.")


@router.post("/logout")
async def logout(browser: BrowserDep) -> Response:
    """Sign out and go to the gallery. Sessions are signed cookies, so this ends all of the account's
    sessions (on every browser), and the app links issued in them: a copied cookie or link is no
    good after it."""
    await browser.check_form()
    if browser.account is not None:
        end_sessions(browser.account)
    browser.sign_out()
    return browser.redirect("/spaces", notice="You are logged out.")


@router.get("/join", response_class=HTMLResponse)
def join_page(browser: BrowserDep) -> Response:
    """The sign-up form, when the hub allows sign-ups."""
    if not browser.ctx.settings.signup_enabled:
        raise Forbidden("sign-ups are closed on this hub: ask its operator for an account")
    return browser.render("join.html")


@router.post("/join")
async def join(browser: BrowserDep) -> Response:
    """Create an account with a password and sign it in, when the hub allows sign-ups."""
    if not browser.ctx.settings.signup_enabled:
        raise Forbidden("sign-ups are closed on this hub: ask its operator for an account")
    form = await browser.check_form()
    name, email = str(form.get("name", "")).strip(), str(form.get("email", "")).strip() or None
    password = str(form.get("password", ""))
    try:
        if len(password) < MIN_PASSWORD:
            raise BadRequest(f"the password needs at least {MIN_PASSWORD} characters")
        account = create_account(browser.session, name, email=email, password_hash=hash_password(password))
    except SpacehubError as exc:
        browser.session.rollback()
        return browser.render("join.html", status_code=400, name=name, email=email or "", problem=exc.message)
    browser.sign_in(account)
    return browser.redirect("/new-space", notice=f"Welcome, {account.name}! Create your first space.")


@router.get("/settings/tokens", response_class=HTMLResponse)
def tokens_page(browser: BrowserDep) -> Response:
    """The signed-in user's access tokens."""
    account = browser.require_account()
    return browser.render("tokens.html", tokens=tokens_of(browser.session, account), created=None)


@router.post("/settings/tokens", response_class=HTMLResponse)
async def create_token(browser: BrowserDep) -> Response:
    """Issue a token for the signed-in user and show it, once."""
    account = browser.require_account()
    form = await browser.check_form()
    name = str(form.get("name", "")).strip()
    role = TokenRole.READ if form.get("role") == "read" else TokenRole.WRITE
    if not name:
        return browser.redirect("/settings/tokens", error="Give the token a name.")
    _token, plaintext = issue_token(browser.session, account, name[:100], role)
    return browser.render(
        "tokens.html",
        tokens=tokens_of(browser.session, account),
        created=plaintext,
        notice=f"Token {name} created. Copy it now: it is shown once.",
    )


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke(token_id: int, browser: BrowserDep) -> Response:
    """Revoke one of the signed-in user's tokens; it stops working at once."""
    account = browser.require_account()
    await browser.check_form()
    token = revoke_token(browser.session, token_id, owner=account)
    return browser.redirect("/settings/tokens", notice=f"Token {token.name} revoked: it stopped working.")


@router.post("/settings/password")
async def change_password(browser: BrowserDep) -> Response:
    """Set a new password, proven by the current one (or a write token); other sessions end."""
    account = browser.require_account()
    form = await browser.check_form()
    new = str(form.get("new", ""))
    if not proves_identity(browser.session, account, str(form.get("current", ""))):
        return browser.redirect(
            "/settings/tokens#password", error="The current password (or token) is wrong."
        )
    try:
        set_password(account, new)
    except BadRequest as exc:
        return browser.redirect("/settings/tokens#password", error=exc.message)
    browser.sign_in(account)
    return browser.redirect(
        "/settings/tokens", notice="Password changed; your other sessions are logged out."
    )
