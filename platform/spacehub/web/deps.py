"""What every HTML page needs: who is browsing (session cookie), the CSRF seed, and rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from spacehub.controller.accounts import Principal
from spacehub.controller.context import ControllerContext
from spacehub.db.models import Account, TokenRole
from spacehub.errors import Forbidden, Unauthorized
from spacehub.http.deps import CtxDep, SessionDep, browser_account
from spacehub.http.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    check_csrf,
    csrf_token,
    new_csrf_seed,
    session_token,
)
from spacehub.http.urls import public_base_url
from spacehub.web.render import build_templates

templates = build_templates()


@dataclass
class Browser:
    """One browser request: its account, a principal for access checks, the CSRF seed."""

    request: Request
    ctx: ControllerContext
    session: Session
    account: Account | None
    csrf_seed: str
    new_seed: bool = False
    cookies: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def principal(self) -> Principal:
        """The browsing user for access checks: a signed-in browser may do what a write token may."""
        return Principal(account=self.account, role=TokenRole.WRITE)

    @property
    def csrf(self) -> str:
        """The CSRF token that this browser's forms carry, derived from its seed."""
        return csrf_token(self.ctx.settings.resolved_internal_token, self.csrf_seed, self.session_binding)

    @property
    def client_address(self) -> str:
        """The visitor's address, as the edge saw it (it sets X-Forwarded-For, never passing a client's)."""
        forwarded = self.request.headers.get("x-forwarded-for", "")
        return forwarded or (self.request.client.host if self.request.client else "")

    @property
    def session_binding(self) -> str:
        """Which session the browser is in, for binding its CSRF tokens: `account:epoch`, or `-`."""
        return f"{self.account.id}:{self.account.session_epoch}" if self.account else "-"

    def require_account(self) -> Account:
        """The signed-in account; Unauthorized for anonymous visitors."""
        if self.account is None:
            raise Unauthorized("sign in first")
        return self.account

    def require_admin(self) -> Account:
        """The signed-in account if it is an administrator; Forbidden otherwise."""
        account = self.require_account()
        if not account.is_admin:
            raise Forbidden("this page is for administrators")
        return account

    async def check_form(self) -> dict[str, Any]:
        """The posted form, after checking its CSRF token."""
        form = await self.request.form()
        if not check_csrf(
            self.ctx.settings.resolved_internal_token,
            self.request.cookies.get(CSRF_COOKIE),
            str(form.get("csrf", "")),
            self.session_binding,
        ):
            raise Forbidden("the form expired or came from another site; reload the page and try again")
        return {key: form.getlist(key) if len(form.getlist(key)) > 1 else form.get(key) for key in form}

    def sign_in(self, account: Account) -> None:
        """Set the session cookie for `account` on the response."""
        self.cookies.append(
            (
                SESSION_COOKIE,
                session_token(self.ctx.settings.resolved_internal_token, account.id, account.session_epoch),
                SESSION_SECONDS,
            )
        )

    def sign_out(self) -> None:
        """Clear the session cookie on the response."""
        self.cookies.append((SESSION_COOKIE, "", 0))

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """A page from `template`, with what every page shows (user, CSRF token, hub URL, notice, problem)."""
        context.update(
            request=self.request,
            user=self.account,
            csrf=self.csrf,
            settings=self.ctx.settings,
            hub_url=public_base_url(self.request),
        )
        context.setdefault("notice", self.request.query_params.get("notice"))
        context.setdefault("problem", self.request.query_params.get("error"))
        response = templates.TemplateResponse(self.request, template, context, status_code=status_code)
        return self.finish(response)

    def redirect(self, url: str, *, notice: str | None = None, error: str | None = None) -> RedirectResponse:
        """A 303 redirect to `url`, carrying a notice or an error for the next page to show."""
        params = {k: v for k, v in (("notice", notice), ("error", error)) if v}
        path, hash_mark, fragment = url.partition("#")
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        target = path + hash_mark + fragment
        return self.finish(RedirectResponse(target, status_code=303))

    def finish(self, response: Any) -> Any:
        """Put the cookies this request set (CSRF seed, session) on `response`, and keep it out of caches."""
        secure = self.ctx.settings.public_scheme == "https"
        if self.new_seed:
            response.set_cookie(CSRF_COOKIE, self.csrf_seed, httponly=True, samesite="lax", secure=secure)
        for name, value, max_age in self.cookies:
            if max_age:
                response.set_cookie(
                    name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure
                )
            else:
                response.delete_cookie(name)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")  # no page of the hub in another's frame
        return response


def browser_for(request: Request, ctx: ControllerContext, session: Session) -> Browser:
    """The Browser of a request: its signed-in account and its CSRF seed (a new one if it has none yet)."""
    seed = request.cookies.get(CSRF_COOKIE)
    return Browser(
        request=request,
        ctx=ctx,
        session=session,
        account=browser_account(ctx, session, request),
        csrf_seed=seed or new_csrf_seed(),
        new_seed=seed is None,
    )


def get_browser(request: Request, ctx: CtxDep, session: SessionDep) -> Browser:
    """The Browser of the request (a dependency)."""
    return browser_for(request, ctx, session)


BrowserDep = Annotated[Browser, Depends(get_browser)]


TITLES = {400: "That did not work", 401: "Please log in", 403: "Not allowed", 404: "Not found"}


def error_page(request: Request, status: int, message: str) -> Response:
    """The hub's page for an error a browser ran into."""
    ctx = request.app.state.ctx
    with ctx.session() as session:
        return browser_for(request, ctx, session).render(
            "error.html",
            status_code=status,
            title=TITLES.get(status, "Something went wrong"),
            message=message,
        )
