"""The OpenID Connect provider's machine endpoints: discovery, keys, token exchange and user info
(the consent page is in web/oauth.py). Apps reach them at the address they were given in
OPENID_PROVIDER_URL; browsers only visit the authorization page, at the hub's public URL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from spacehub.controller.oauth import (
    ALWAYS,
    SCOPES_SUPPORTED,
    HubAuthorizationServer,
    public_jwks,
    user_info,
)
from spacehub.errors import Unauthorized
from spacehub.http.deps import CtxDep, SessionDep, UserDep
from spacehub.http.oauth import as_response, oauth_request
from spacehub.http.urls import public_base_url

router = APIRouter(tags=["oauth"], include_in_schema=False)


@router.get("/.well-known/openid-configuration")
def discovery(request: Request, ctx: CtxDep) -> dict[str, Any]:
    """Where each endpoint is: the authorization page at the public URL (browsers go there), the
    others as this request reached the hub (apps call them from their own network)."""
    base = public_base_url(request)
    return {
        "issuer": base,
        "authorization_endpoint": f"{ctx.settings.resolved_public_url}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/oauth/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": [
            "sub",
            "name",
            "preferred_username",
            "profile",
            "picture",
            "email",
            "email_verified",
        ],
    }


@router.get("/oauth/jwks")
def jwks(ctx: CtxDep, session: SessionDep) -> dict[str, Any]:
    """The public keys that ID tokens are signed with."""
    return public_jwks(ctx, session)


@router.post("/oauth/token")
async def token(request: Request, ctx: CtxDep, session: SessionDep) -> Response:
    """Exchange an authorization code for an access token and an ID token (RFC 6749, 4.1.3)."""
    form = await request.form()
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    server = HubAuthorizationServer(ctx, session, issuer=public_base_url(request))
    return as_response(server.create_token_response(oauth_request(ctx.settings, request, params)))


@router.api_route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo(ctx: CtxDep, principal: UserDep) -> dict[str, Any]:
    """The claims about the token's user that its scopes allow."""
    if principal.account is None:
        raise Unauthorized("the internal token belongs to no user")
    scopes = " ".join(principal.scopes) if principal.scopes is not None else " ".join(ALWAYS)
    return dict(user_info(ctx, principal.account, scopes))
