"""Custom domains: a space's app served at its owner's own domain, beside its subdomain. The edge
routes the domain as soon as it is set (no request reaches it before DNS points it here); the API
says it is pending until the domain resolves to the hub."""

from __future__ import annotations

import re
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spacehub.controller.context import ControllerContext
from spacehub.controller.spaces import publish
from spacehub.db.models import Space
from spacehub.errors import BadRequest, Conflict

LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
LOOKUP_SECONDS = 3
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="domain-lookup")


@dataclass(frozen=True)
class DomainStatus:
    """A custom domain and whether it reaches the hub yet (`READY`) or not (`PENDING`, and why)."""

    domain: str
    stage: str
    message: str


def normal_domain(ctx: ControllerContext, domain: object) -> str:
    """`domain` in lowercase if a space may use it; BadRequest saying why not otherwise."""
    if not isinstance(domain, str) or not domain.strip():
        raise BadRequest("give the domain as a string, such as `demo.example.com`")
    name = domain.strip().lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(LABEL.match(label) for label in labels):
        raise BadRequest(f"{domain!r} is not a domain name (letters, digits and '-', dot-separated)")
    hub = ctx.settings.public_host
    apps = ctx.settings.resolved_apps_domain
    if name in (hub, apps) or name.removeprefix(labels[0] + ".") == apps:
        raise BadRequest(f"{name} is the hub's own: a custom domain is one of yours, outside {apps}")
    return name


def set_custom_domain(ctx: ControllerContext, session: Session, space: Space, domain: object) -> DomainStatus:
    """Serve `space`'s app at `domain` too; Conflict when another space has it."""
    if ctx.settings.routing != "subdomain":
        raise BadRequest("custom domains need subdomain routing (SPACEHUB_ROUTING=subdomain)")
    if space.repo.private and not space.protected:
        raise BadRequest("custom domains serve public apps: make the space public or protected first")
    name = normal_domain(ctx, domain)
    taken = session.scalar(
        select(Space).where(func.lower(Space.custom_domain) == name, Space.repo_id != space.repo_id)
    )
    if taken is not None:
        raise Conflict(f"{name} is another space's custom domain")
    space.custom_domain = name
    publish(ctx, space)
    return domain_status(ctx, name)


def remove_custom_domain(ctx: ControllerContext, space: Space) -> None:
    """Stop serving `space`'s app at its custom domain."""
    space.custom_domain = None
    publish(ctx, space)


def domain_status(ctx: ControllerContext, domain: str) -> DomainStatus:
    """Whether `domain` resolves to the hub: to an address of the hub's public host name."""
    hub = ctx.settings.public_host
    found = addresses(domain)
    if not found:
        return DomainStatus(domain, "PENDING", f"{domain} does not resolve yet: point it (CNAME) to {hub}")
    if found & addresses(hub):
        return DomainStatus(domain, "READY", f"{domain} resolves to the hub")
    listed = ", ".join(sorted(found))
    return DomainStatus(
        domain, "PENDING", f"{domain} resolves to {listed}, not to the hub: point it to {hub}"
    )


def addresses(host: str) -> set[str]:
    """The IP addresses `host` resolves to here (none when it does not resolve within a few
    seconds: a resolver that does not answer must not hold the request)."""
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, None)
    try:
        return {str(info[4][0]) for info in lookup.result(timeout=LOOKUP_SECONDS)}
    except (OSError, UnicodeError, TimeoutError):
        return set()
