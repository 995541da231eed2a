"""The authorization page of "Sign in with the hub": a signed-in user lets an app sign them in,
once per app and scope set; the browser then goes back to the app with a code."""

from __future__ import annotations

from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter
from fastapi.responses import Response

from spacehub.controller.oauth import (
    HubAuthorizationServer,
    OAuthApp,
    has_consent,
    may_sign_in,
    record_consent,
)
from spacehub.db.models import Account
from spacehub.http.oauth import as_response, oauth_request
from spacehub.http.urls import public_base_url
from spacehub.web.deps import Browser, BrowserDep

router = APIRouter(include_in_schema=False)

SCOPE_DESCRIPTIONS = {
    "openid": "know that it is you (your user id)",
    "profile": "see your name, user name and profile page",
    "email": "see your email address",
    "read-repos": "read your repositories and your organizations', private ones included",
    "write-repos": "change your repositories and your organizations'",
    "manage-repos": "create and delete repositories in your name",
    "inference-api": "call models on your behalf",
    "read-billing": "see your billing",
}
PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt")


@router.get("/oauth/authorize")
def authorize_page(browser: BrowserDep) -> Response:
    """Ask the signed-in user whether the app may sign them in (or go straight back to the app
    when they agreed before)."""
    params = {k: v for k in PARAMS if (v := browser.request.query_params.get(k)) is not None}
    here = "/oauth/authorize?" + urlencode(params)
    if browser.request.headers.get("sec-fetch-dest") == "iframe":
        # An app's sign-in button inside the space page's frame: consent is never asked in a frame
        # (a page around it could trick the click), so the sign-in goes on in the whole tab.
        response = browser.render("oauth_framed.html", url=here)
        del response.headers["X-Frame-Options"]
        return response
    if browser.account is None:
        return browser.redirect(
            "/login?" + urlencode({"next": here}), notice="Log in to continue to the app."
        )
    return answer(browser, browser.account, params, decision=None)


@router.post("/oauth/authorize")
async def authorize(browser: BrowserDep) -> Response:
    """The user's decision: allow (remembered for this app and these scopes) or deny."""
    account = browser.require_account()
    form = await browser.check_form()
    params = {k: str(form[k]) for k in PARAMS if k in form}
    return answer(browser, account, params, decision=str(form.get("decision", "")))


def answer(browser: Browser, account: Account, params: dict[str, str], decision: str | None) -> Response:
    """The consent page, or the redirect back to the app with a code or an error."""
    ctx, session = browser.ctx, browser.session
    request = oauth_request(ctx.settings, browser.request, params)
    server = HubAuthorizationServer(ctx, session, issuer=public_base_url(browser.request))
    try:
        grant = server.get_consent_grant(request, end_user=account)
    except OAuth2Error as error:
        if error.redirect_uri:  # a known app, its own address: the app hears of the problem
            return browser.finish(as_response(server.handle_error_response(request, error)))
        return problem(browser, 400, f"This sign-in link is not valid: {error.description or error.error}.")
    app: OAuthApp = grant.client
    scope = grant.request.scope or ""  # narrowed by Authlib to what the app's README declares
    if not may_sign_in(session, app, account):
        orgs = ", ".join(app.authorized_orgs)
        return problem(browser, 403, f"{app.space_name} signs in members of {orgs} only.")
    asked_before = params.get("prompt") != "consent" and has_consent(session, account, app, scope)
    if decision is None and not asked_before:
        return browser.render(
            "oauth_consent.html",
            app=app,
            scopes=scope.split(),
            descriptions=SCOPE_DESCRIPTIONS,
            params=params,
        )
    if decision == "allow":
        record_consent(session, account, app, scope)
    granted = account if decision in (None, "allow") else None
    result = server.create_authorization_response(request, grant_user=granted, grant=grant)
    return browser.finish(as_response(result))


def problem(browser: Browser, status: int, message: str) -> Response:
    """The hub's error page, for a sign-in that cannot go back to the app."""
    return browser.render("error.html", status_code=status, title="Sign-in refused", message=message)
