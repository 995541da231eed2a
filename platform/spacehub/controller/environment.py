"""A space's variables (public) and secrets (write-only): environment of its app at run time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from spacehub.db.models import Space, SpaceSecret, SpaceVariable, utcnow
from spacehub.errors import BadRequest, NotFound

EnvEntry = TypeVar("EnvEntry", SpaceSecret, SpaceVariable)
KEY_RE = re.compile(r"^[a-zA-Z][_a-zA-Z0-9]*$")
MAX_VALUE = 64 * 1024
# Set by the platform for every app; a space cannot redefine them.
RESERVED = frozenset({
    "SPACE_ID", "SPACE_HOST", "SPACE_AUTHOR_NAME", "SPACE_REPO_NAME", "SPACE_TITLE", "SPACE_CREATOR_USER_ID",
    "CPU_CORES", "MEMORY", "ACCELERATOR", "HF_ENDPOINT",
})  # fmt: skip


def validate_entry(key: Any, value: Any) -> tuple[str, str]:
    """`(key, value)` if they make a valid variable or secret; BadRequest otherwise (reserved keys too)."""
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise BadRequest(f"invalid key {key!r}: letters, digits and '_', starting with a letter")
    if key.upper() in RESERVED:
        raise BadRequest(f"{key} is set by the platform and cannot be overridden")
    if not isinstance(value, str):
        raise BadRequest(f"the value of {key} must be a string")
    if len(value.encode()) > MAX_VALUE:
        raise BadRequest(f"the value of {key} is larger than {MAX_VALUE} bytes")
    return key, value


def upsert(
    session: Session,
    model: type[EnvEntry],
    space: Space,
    key: Any,
    value: Any,
    description: str | None,
    seal: Callable[[str], str] | None = None,
) -> None:
    """Add a variable or secret (`model`) to the space, or change its value and description;
    `seal` encrypts the value as the database keeps it (secrets)."""
    key, value = validate_entry(key, value)
    if seal is not None:
        value = seal(value)
    row = session.get(model, (space.repo_id, key))
    if row is None:
        session.add(model(space_id=space.repo_id, key=key, value=value, description=description))
    else:
        row.value, row.description, row.updated_at = value, description, utcnow()
    session.flush()


def remove(session: Session, model: type[EnvEntry], space: Space, key: Any) -> None:
    """Delete a variable or secret (`model`) of the space; NotFound if it has none named `key`."""
    row = session.get(model, (space.repo_id, key)) if isinstance(key, str) else None
    if row is None:
        raise NotFound(f"no {'secret' if model is SpaceSecret else 'variable'} named {key!r}")
    session.delete(row)
    session.flush()
