"""HTTP on both sides of the OpenID Connect provider: a request as Authlib's server needs it, and
its answer as a response. The API (token endpoint) and the pages (authorization page) share it."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from spacehub.config import Settings
from spacehub.controller.oauth import OAuthHttpRequest, OAuthResponse


def oauth_request(settings: Settings, request: Request, params: dict[str, str]) -> OAuthHttpRequest:
    """`request` for the authorization server, at the hub's public URL: OAuth needs https there
    (or a loopback host), whatever network the caller came through."""
    return OAuthHttpRequest(
        method=request.method,
        uri=f"{settings.resolved_public_url}{request.url.path}",
        headers=request.headers,  # read without regard to case, as HTTP says
        params=params,
    )


def as_response(answer: OAuthResponse) -> Response:
    """The authorization server's answer as an HTTP response."""
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    if answer.body:
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)
    return Response(status_code=answer.status, headers=headers)
