"""Listing repositories as the Hub does: visibility, author, search, tags, sort, cursors."""

from __future__ import annotations

import base64
import json

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from spacehub.controller.access import can_read
from spacehub.controller.accounts import Principal, find_account
from spacehub.db.models import Repo, RepoType, Space
from spacehub.errors import BadRequest

PAGE_SIZE = 1000
SORTS = {
    "lastModified": Repo.updated_at,
    "last_modified": Repo.updated_at,
    "createdAt": Repo.created_at,
    "created_at": Repo.created_at,
    "likes": Repo.likes,
    "id": func.lower(Repo.name),
}


def encode_cursor(offset: int) -> str:
    """An opaque pagination cursor for the listing at `offset`."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """The offset a pagination cursor stands for (0 without one); BadRequest for a malformed one."""
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise BadRequest("invalid cursor") from None


def visible_repos(
    session: Session,
    principal: Principal,
    type: RepoType,
    *,
    author: str | None = None,
    search: str | None = None,
    tags: list[str] | None = None,
    sort: str | None = None,
    descending: bool = True,
) -> list[Repo]:
    """Repositories of `type` that `principal` may see, filtered and sorted."""
    query = select(Repo).where(Repo.type == type)
    if author:
        account = find_account(session, author)
        if account is None:
            return []
        query = query.where(Repo.owner_id == account.id)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            or_(func.lower(Repo.name).like(pattern), func.lower(Repo.card["title"].as_string()).like(pattern))
        )
    order = SORTS.get(sort or "")
    if sort and order is None and sort not in ("trendingScore", "trending_score"):
        raise BadRequest(f"cannot sort by {sort!r}: use lastModified, createdAt, likes or trendingScore")
    if order is None:
        order = Repo.updated_at
    query = query.order_by(order.desc() if descending else order.asc(), Repo.id.desc())
    repos = [repo for repo in session.scalars(query) if can_read(session, principal, repo)]
    for tag in tags or []:
        repos = [repo for repo in repos if tag in repo_tags(repo)]
    return repos


def repo_tags(repo: Repo) -> list[str]:
    """A repository's tags: its card's, after its SDK for a space."""
    card_tags = (repo.card or {}).get("tags")
    tags = [str(t) for t in card_tags] if isinstance(card_tags, list) else []
    space: Space | None = repo.space
    return [space.sdk, *tags] if space is not None else tags
