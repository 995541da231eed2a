"""Absolute URLs as the caller sees the hub, and the URL of each app."""

from __future__ import annotations

from fastapi import Request

from spacehub.config import Settings
from spacehub.controller.repos import URL_PREFIXES
from spacehub.db.models import Repo, Space

PATH_ROUTING_PREFIX = "/app"


def public_base_url(request: Request) -> str:
    """The hub's URL as this request reached it. The edge proxy always sets the X-Forwarded
    headers (it never passes a client's own), and the controller listens only behind it."""
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc
    return f"{proto}://{host}"


def repo_url(base_url: str, repo: Repo) -> str:
    return f"{base_url}/{URL_PREFIXES[repo.type]}{repo.full_name}"


def app_path_prefix(owner: str, name: str) -> str:
    """Where an app lives in path routing (no trailing slash)."""
    return f"{PATH_ROUTING_PREFIX}/{owner}/{name}"


def app_url(settings: Settings, space: Space, base_url: str) -> str:
    """The app's own URL (`host` in the Hub's space info).

    Subdomain routing: its own origin. Path routing: a prefix of the hub's origin, with a trailing
    slash so that clients resolving relative URLs (gradio_client does) stay under it."""
    if settings.routing == "path":
        repo = space.repo
        return f"{base_url}{app_path_prefix(repo.owner.name, repo.name)}/"
    port = settings.public_port
    suffix = f":{port}" if port else ""
    return f"{settings.public_scheme}://{space.subdomain}.{settings.resolved_apps_domain}{suffix}"
