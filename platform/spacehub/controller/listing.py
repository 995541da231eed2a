"""Listing repositories as the Hub does: visibility, author, search, tags, sort, cursors."""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from spacehub.controller.accounts import Principal, find_account
from spacehub.controller.context import ControllerContext
from spacehub.db.models import Membership, Repo, RepoType, Space
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


def visibility(principal: Principal) -> ColumnElement[bool]:
    """What `principal` may see, as SQL: public repositories, their own and their organizations'
    (the rule of access.can_read, for a whole listing at once)."""
    if principal.is_admin:
        return true()
    account = principal.account
    if account is None:
        return Repo.private.is_(False)
    organizations = select(Membership.org_id).where(Membership.user_id == account.id)
    return or_(Repo.private.is_(False), Repo.owner_id == account.id, Repo.owner_id.in_(organizations))


def listing_conditions(
    session: Session,
    principal: Principal,
    type: RepoType,
    *,
    author: str | None = None,
    search: str | None = None,
    tags: list[str] | None = None,
) -> list[ColumnElement[bool]] | None:
    """The SQL conditions of a listing: type, visibility, author, search (name or title) and tags
    (a space's SDK, or one of its card's tags); None when the author does not exist."""
    conditions = [Repo.type == type, visibility(principal)]
    if author:
        account = find_account(session, author)
        if account is None:
            return None
        conditions.append(Repo.owner_id == account.id)
    if search:
        name, title = func.lower(Repo.name), func.lower(Repo.card["title"].as_string())
        needle = search.lower()
        found = [column.contains(needle, autoescape=True) for column in (name, title)]
        conditions.append(or_(*found))
    for tag in tags or []:
        card_tags = func.coalesce(Repo.card["tags"].as_string(), "")
        conditions.append(
            or_(Repo.space.has(Space.sdk == tag), card_tags.contains(f'"{tag}"', autoescape=True))
        )
    return conditions


def sort_order(sort: str | None, descending: bool) -> tuple[ColumnElement[Any], ...]:
    """The ORDER BY of a listing sorted by `sort` (the Hub's names); BadRequest for others."""
    order = SORTS.get(sort or "")
    if sort and order is None and sort not in ("trendingScore", "trending_score"):
        raise BadRequest(f"cannot sort by {sort!r}: use lastModified, createdAt, likes or trendingScore")
    if order is None:
        order = Repo.updated_at
    return (order.desc() if descending else order.asc(), Repo.id.desc())


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
    offset: int = 0,
    limit: int | None = None,
) -> list[Repo]:
    """Repositories of `type` that `principal` may see, filtered, sorted and sliced in the database."""
    conditions = listing_conditions(session, principal, type, author=author, search=search, tags=tags)
    if conditions is None:
        return []
    query = select(Repo).where(*conditions).order_by(*sort_order(sort, descending))
    return list(session.scalars(query.offset(offset).limit(limit)))


def count_visible(session: Session, conditions: list[ColumnElement[bool]] | None) -> int:
    """How many repositories a listing's conditions select."""
    if conditions is None:
        return 0
    return session.scalar(select(func.count(Repo.id)).where(*conditions)) or 0


def repo_tags(repo: Repo) -> list[str]:
    """A repository's tags: its card's, after its SDK for a space."""
    card_tags = (repo.card or {}).get("tags")
    tags = [str(t) for t in card_tags] if isinstance(card_tags, list) else []
    space: Space | None = repo.space
    return [space.sdk, *tags] if space is not None else tags


RECENCY_BONUS = 10.0


def trending_score(likes: int, last_active: float, now: float) -> float:
    """Likes, plus a bonus for recent activity (at most RECENCY_BONUS) that halves every day."""
    age_days = max(0.0, (now - last_active) / 86400)
    return likes + RECENCY_BONUS * math.pow(0.5, age_days)


def last_visits(ctx: ControllerContext, space_ids: list[int]) -> list[float | None]:
    """When each space's app last had a visitor (the edge and the hub record it), in epoch seconds;
    None for one that never had any."""
    scores = ctx.redis.zmscore(ctx.keys.activity, [str(i) for i in space_ids]) if space_ids else []
    return [float(score) if score is not None else None for score in scores]


def last_active(ctx: ControllerContext, repos: list[Repo]) -> list[float]:
    """When each repository was last visited (its app) or else updated, in epoch seconds."""
    visits = last_visits(ctx, [r.id for r in repos])
    return [
        visit if visit is not None else repo.updated_at.timestamp()
        for repo, visit in zip(repos, visits, strict=True)
    ]


def trending_page(
    ctx: ControllerContext,
    session: Session,
    conditions: list[ColumnElement[bool]] | None,
    page: int,
    size: int,
) -> list[Repo]:
    """Page `page` of the spaces `conditions` select, by trending score. A score is likes plus at
    most RECENCY_BONUS, so only spaces within that many likes of the page's last by likes can rank
    on it: those are scored (three columns, one Redis read), then the page's records loaded."""
    if conditions is None:
        return []
    by_likes = select(Repo.likes).where(*conditions).order_by(Repo.likes.desc())
    floor = session.scalar(by_likes.offset(page * size - 1).limit(1))
    candidates = select(Repo.id, Repo.likes, Repo.updated_at).where(*conditions)
    if floor is not None:
        candidates = candidates.where(Repo.likes >= floor - RECENCY_BONUS)
    rows = session.execute(candidates).all()
    visits = last_visits(ctx, [row.id for row in rows])
    now = time.time()
    scored = [
        (trending_score(row.likes, v if v is not None else row.updated_at.timestamp(), now), row.id)
        for row, v in zip(rows, visits, strict=True)
    ]
    scored.sort(reverse=True)
    ids = [repo_id for _score, repo_id in scored[(page - 1) * size : page * size]]
    found = {repo.id: repo for repo in session.scalars(select(Repo).where(Repo.id.in_(ids)))}
    return [found[repo_id] for repo_id in ids]


def spaces_using(session: Session, principal: Principal, repo: Repo, limit: int = 24) -> list[Repo]:
    """The spaces `principal` may see that name `repo` in their front matter (`models:` or
    `datasets:`), most liked first."""
    conditions = listing_conditions(session, principal, RepoType.SPACE)
    assert conditions is not None  # no author given
    field = "models" if repo.type == RepoType.MODEL else "datasets"
    named = func.lower(func.coalesce(Repo.card[field].as_string(), ""))
    conditions.append(named.contains(f'"{repo.full_name.lower()}"', autoescape=True))
    query = select(Repo).where(*conditions).order_by(Repo.likes.desc(), Repo.id.desc()).limit(limit)
    return list(session.scalars(query))
