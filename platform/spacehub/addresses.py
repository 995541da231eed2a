"""Where each app answers: its own origin (subdomain routing) or a path under the hub's origin.
One home for the rule, shared by the controller (which tells clients) and the edge (which routes)."""

from __future__ import annotations

from spacehub.config import Settings

PATH_ROUTING_PREFIX = "/app"


def app_path_prefix(owner: str, name: str) -> str:
    """Where an app lives in path routing (no trailing slash)."""
    return f"{PATH_ROUTING_PREFIX}/{owner}/{name}"


def app_root_path(settings: Settings, owner: str, name: str) -> str:
    """The prefix an app must serve under: its path prefix in path routing, nothing otherwise."""
    return app_path_prefix(owner, name) if settings.routing == "path" else ""


def app_url(settings: Settings, subdomain: str, owner: str, name: str, base_url: str) -> str:
    """The app's own URL (`host` in the Hub's space info).

    Subdomain routing: its own origin. Path routing: a prefix of the hub's origin, with a trailing
    slash so that clients resolving relative URLs (gradio_client does) stay under it."""
    if settings.routing == "path":
        return f"{base_url}{app_path_prefix(owner, name)}/"
    port = settings.public_port
    suffix = f":{port}" if port else ""
    return f"{settings.public_scheme}://{subdomain}.{settings.resolved_apps_domain}{suffix}"
