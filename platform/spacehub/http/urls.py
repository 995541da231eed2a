"""Absolute URLs as the caller sees the hub: its base, a repository's page, a space's app."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import Request

from spacehub.addresses import app_url
from spacehub.config import Settings
from spacehub.controller.repos import URL_PREFIXES
from spacehub.db.models import Repo, Space


def public_base_url(request: Request) -> str:
    """The hub's URL as this request reached it. The edge proxy always sets the X-Forwarded
    headers (it never passes a client's own), and the controller listens only behind it."""
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc
    return f"{proto}://{host}"


def repo_url(base_url: str, repo: Repo) -> str:
    """A repository's page on the hub."""
    return f"{base_url}/{URL_PREFIXES[repo.type]}{repo.full_name}"


def space_app_url(settings: Settings, space: Space, base_url: str) -> str:
    """The URL of a space's app (`host` in the Hub's space info)."""
    repo = space.repo
    return app_url(settings, space.subdomain, repo.owner.name, repo.name, base_url)


def next_link(request: Request, cursor: str, **params: str) -> str:
    """The `Link` header of a paginated answer: this request again, from `cursor` (and `params`)."""
    query = {**dict(request.query_params), "cursor": cursor, **params}
    path = quote(request.url.path, safe="/")  # percent-encoded again: never a raw control character
    return f'<{public_base_url(request)}{path}?{urlencode(query)}>; rel="next"'
