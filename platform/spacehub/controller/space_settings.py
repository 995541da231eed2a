"""What owners change about a space (hardware, visibility, secrets and variables): one home for
the API's endpoints and the Settings tab. A change the app must see restarts it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from spacehub.controller import environment
from spacehub.controller.context import ControllerContext
from spacehub.controller.spaces import publish, redeploy_if_deployed
from spacehub.db.models import Repo, Space, SpaceSecret, SpaceVariable
from spacehub.errors import BadRequest


def check_hardware(ctx: ControllerContext, flavor: str | None) -> None:
    """BadRequest unless `flavor` is None or a hardware flavor this hub has."""
    if flavor is not None and flavor not in ctx.flavors:
        raise BadRequest(f"unknown hardware {flavor!r}; see GET /api/spaces/hardware")


def change_hardware(ctx: ControllerContext, session: Session, space: Space, flavor: str) -> bool:
    """Run the space on `flavor` from now on (it restarts on it); False when it already does."""
    check_hardware(ctx, flavor)
    if flavor == space.hardware:
        return False
    space.hardware = flavor
    redeploy_if_deployed(ctx, session, space)
    return True


def set_private(ctx: ControllerContext, repo: Repo, private: bool) -> None:
    """Make a repository private (invisible to all but its owners, on every path) or public."""
    set_visibility(ctx, repo, "private" if private else "public")


def set_visibility(ctx: ControllerContext, repo: Repo, visibility: str) -> None:
    """`public`, `private`, or for a space `protected`: its app open to all, its repository private."""
    if visibility not in ("public", "private", "protected"):
        raise BadRequest("visibility is public, private or protected")
    if visibility == "protected" and repo.space is None:
        raise BadRequest("only spaces can be protected (their app public, their repository private)")
    repo.private = visibility != "public"
    if repo.space is not None:
        repo.space.protected = visibility == "protected"
        publish(ctx, repo.space)


def put_environment(
    ctx: ControllerContext,
    session: Session,
    space: Space,
    kind: str,
    key: str,
    value: str,
    description: str | None = None,
) -> None:
    """Add or change a secret or a variable (`kind`); the app restarts with it."""
    if kind == "secrets":
        environment.upsert(session, SpaceSecret, space, key, value, description, ctx.vault.seal)
    else:
        environment.upsert(session, SpaceVariable, space, key, value, description)
    redeploy_if_deployed(ctx, session, space)


def delete_environment(ctx: ControllerContext, session: Session, space: Space, kind: str, key: str) -> None:
    """Remove a secret or a variable (`kind`); the app restarts without it."""
    if kind == "secrets":
        environment.remove(session, SpaceSecret, space, key)
    else:
        environment.remove(session, SpaceVariable, space, key)
    redeploy_if_deployed(ctx, session, space)
