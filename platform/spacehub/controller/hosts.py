"""Hosts as operators see them (the admin API and the dashboard): capacity, what placement counts
(requests), the limits, what apps really use, and how many apps sit in each idle tier."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.controller.context import ControllerContext
from spacehub.db.models import Repo, RepoType
from spacehub.state.hosts import Allocation, HostRecord


@dataclass(frozen=True)
class AppUse:
    """One app (or a job about to start one) on a host."""

    space: str | None
    allocation: Allocation


@dataclass(frozen=True)
class HostView:
    host: str
    record: HostRecord | None
    apps: list[AppUse] = field(default_factory=list)

    @property
    def online(self) -> bool:
        """Whether the host is heartbeating (its record has not expired)."""
        return self.record is not None


def space_names(session: Session) -> dict[int, str]:
    """Space id -> owner/name, for labelling what hosts report by id."""
    rows = session.execute(select(Repo).where(Repo.type == RepoType.SPACE)).scalars()
    return {repo.id: repo.full_name for repo in rows}


def host_views(ctx: ControllerContext, names: dict[int, str]) -> list[HostView]:
    """Every host that ever reported, online ones with their apps."""
    alive = ctx.hosts.alive()
    views = []
    for name in sorted(ctx.hosts.known() | set(alive)):
        record = alive.get(name)
        apps = [AppUse(names.get(a.space_id), a) for a in record.allocations] if record else []
        views.append(HostView(name, record, apps))
    return views


def usage_samples(ctx: ControllerContext, host: str, count: int) -> list[dict[str, float]]:
    """The host's last `count` allocation samples (`t`, `cpu` and `mem` percentages), oldest first,
    as the reconciler records them."""
    raw = ctx.redis.lrange(ctx.keys.usage(host), 0, count - 1)
    return [json.loads(item) for item in reversed(raw)]
