"""The route table: one Redis hash per space that the edge proxy reads and caches.

The controller writes what a space is (stage, visibility, SDK, idle times); the agent that runs
its container writes where it answers (`upstream`, `build`, `host`) and how awake it is (`tier`).
Every change is announced on a pub/sub channel so that proxies update their in-memory copy without
polling, and a proxy that starts cold needs only Redis, never the controller."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from spacehub.stages import Stage, Tier
from spacehub.state.keys import Keys

# Clear the upstream only if it still belongs to the given build: a late report of an old
# container must never remove the route of the one that replaced it.
# Route to a new build only while it is still the space's current build: a build superseded
# during its health check must not take the traffic of the one that replaced it.
_ADD_IF_CURRENT = """
if redis.call('HGET', KEYS[1], 'current_build') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'upstream', ARGV[1], 'build', ARGV[2], 'host', ARGV[3], 'tier', 'serving')
return 1
"""

_CLEAR_IF_OWNER = """
if redis.call('HGET', KEYS[1], 'build') == ARGV[1] and redis.call('HGET', KEYS[1], 'host') == ARGV[2] then
  redis.call('HDEL', KEYS[1], 'upstream', 'build', 'host', 'tier')
  return 1
end
return 0
"""

# A tier change (and the upstream that goes with it: none while sleeping) applies only to the
# container that owns the route: the build on the host that runs it.
_SET_TIER_IF_OWNER = """
if redis.call('HGET', KEYS[1], 'build') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'host') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'tier', ARGV[3])
if ARGV[4] == '-' then
  redis.call('HDEL', KEYS[1], 'upstream')
elseif ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'upstream', ARGV[4])
end
return 1
"""
KEEP_UPSTREAM = ""
NO_UPSTREAM = "-"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class SpaceRecord:
    subdomain: str
    id: int
    name: str
    stage: Stage
    private: bool = False
    sdk: str = "gradio"
    message: str = ""
    upstream: str = ""
    build: int | None = None
    host: str = ""
    static_sha: str = ""
    current_build: int | None = None
    live_build: int | None = None
    live_host: str = ""
    tier: Tier | None = None
    freeze_after: int | None = None
    sleep_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    embeddable: bool = True
    domain: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, subdomain: str, raw: dict[Any, Any]) -> SpaceRecord | None:
        """The record a space's Redis hash holds, or None when it has no id or stage (gone)."""
        data = {_text(k): _text(v) for k, v in raw.items()}
        if "id" not in data or "stage" not in data:
            return None
        return cls(
            subdomain=subdomain,
            id=int(data.pop("id")),
            name=data.pop("name", ""),
            stage=Stage(data.pop("stage")),
            private=data.pop("private", "0") == "1",
            sdk=data.pop("sdk", "gradio"),
            message=data.pop("message", ""),
            upstream=data.pop("upstream", ""),
            build=int(b) if (b := data.pop("build", "")) else None,
            host=data.pop("host", ""),
            static_sha=data.pop("static_sha", ""),
            current_build=int(c) if (c := data.pop("current_build", "")) else None,
            live_build=int(lb) if (lb := data.pop("live_build", "")) else None,
            live_host=data.pop("live_host", ""),
            tier=Tier(t) if (t := data.pop("tier", "")) in Tier.__members__.values() else None,
            freeze_after=_seconds(data.pop("freeze_after", "")),
            sleep_after=_seconds(data.pop("sleep_after", "")),
            headers=json.loads(data.pop("headers", "") or "{}"),
            embeddable=data.pop("embeddable", "1") != "0",
            domain=data.pop("domain", ""),
            extra=data,
        )

    @property
    def owner(self) -> str:
        """The space's owner: the first part of its `owner/name`."""
        return self.name.split("/", 1)[0]

    @property
    def serving_upstream(self) -> str | None:
        """Where the app answers at once (it runs, and is not frozen or asleep), else None."""
        return self.upstream if self.upstream and self.tier in (None, Tier.SERVING) else None

    def is_owned_by(self, build_id: int, host_id: str) -> bool:
        """Whether the route belongs to `build_id` on `host_id` (serving, or asleep there)."""
        return self.build == build_id and self.host == host_id

    def is_live(self, build_id: int, host_id: str) -> bool:
        """Whether `build_id` on `host_id` serves (or served, per the controller) this space."""
        return self.is_owned_by(build_id, host_id) or (
            self.live_build == build_id and self.live_host == host_id
        )


def _seconds(value: str) -> int | None:
    return int(value) if value.lstrip("-").isdigit() else None


@dataclass(frozen=True)
class SpaceFacts:
    """What the controller knows of a space, for the edge and the agents: `current_build` is the
    build in progress, `live_build` on `live_host` the one it last saw serving (so an agent can
    restore a lost route); `freeze_after` and `sleep_after` are the idle times (seconds, None:
    never) after which its agent freezes it or puts it to sleep; `headers` are the owner's
    `custom_headers`, which the edge adds to every answer of the app; an app that is not
    `embeddable` (`disable_embedding`) may be framed by the hub's own pages only; `domain` is the
    owner's custom domain, which the edge serves the app at too."""

    subdomain: str
    id: int
    name: str
    stage: Stage
    private: bool
    sdk: str
    message: str = ""
    static_sha: str = ""
    current_build: int | None = None
    live_build: int | None = None
    live_host: str = ""
    freeze_after: int | None = None
    sleep_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    embeddable: bool = True
    domain: str = ""

    def to_hash(self) -> dict[str, str]:
        """The fields as the route table stores them."""
        return {
            "id": str(self.id),
            "name": self.name,
            "stage": self.stage.value,
            "private": "1" if self.private else "0",
            "sdk": self.sdk,
            "message": self.message,
            "static_sha": self.static_sha,
            "current_build": str(self.current_build or ""),
            "live_build": str(self.live_build or ""),
            "live_host": self.live_host,
            "freeze_after": "" if self.freeze_after is None else str(self.freeze_after),
            "sleep_after": "" if self.sleep_after is None else str(self.sleep_after),
            "headers": json.dumps(self.headers, sort_keys=True),
            "embeddable": "1" if self.embeddable else "0",
            "domain": self.domain,
        }


class RouteTable:
    """Synchronous access to the route table, for the controller and the agents."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.redis = client
        self.keys = keys
        self._clear_if_owner = client.register_script(_CLEAR_IF_OWNER)
        self._add_if_current = client.register_script(_ADD_IF_CURRENT)
        self._set_tier_if_owner = client.register_script(_SET_TIER_IF_OWNER)

    def publish_space(self, facts: SpaceFacts) -> None:
        """Record what the controller knows of a space (the agents' fields stay as they are)."""
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.space(facts.subdomain), mapping=facts.to_hash())
        pipe.sadd(self.keys.spaces, facts.subdomain)
        pipe.publish(self.keys.space_changes, facts.subdomain)
        pipe.execute()

    def differing(self, facts: list[SpaceFacts]) -> list[SpaceFacts]:
        """The facts the route table says something else of (or nothing), in one round trip."""
        wanted = [f.to_hash() for f in facts]
        pipe = self.redis.pipeline(transaction=False)
        for fact, fields in zip(facts, wanted, strict=True):
            pipe.hmget(self.keys.space(fact.subdomain), list(fields))
        stored = pipe.execute()
        return [
            fact
            for fact, fields, values in zip(facts, wanted, stored, strict=True)
            if [_text(v) if v is not None else None for v in values] != list(fields.values())
        ]

    def subdomains(self) -> set[str]:
        """Every space the route table has a record of."""
        return {_text(raw) for raw in self.redis.smembers(self.keys.spaces)}

    def add_route(
        self,
        subdomain: str,
        upstream: str,
        build_id: int,
        host_id: str,
        *,
        if_current: bool = False,
        tier: Tier = Tier.SERVING,
    ) -> bool:
        """Send the space's traffic to `upstream` (host:port), whose app is in `tier`, from now on;
        with `if_current`, only if `build_id` is still the build the controller wants (and serving)."""
        key = self.keys.space(subdomain)
        if if_current:
            if not self._add_if_current(keys=[key], args=[upstream, build_id, host_id]):
                return False
        else:
            self.redis.hset(
                key, mapping={"upstream": upstream, "build": build_id, "host": host_id, "tier": tier.value}
            )
        self.redis.publish(self.keys.space_changes, subdomain)
        return True

    def set_tier(
        self, subdomain: str, build_id: int, host_id: str, tier: Tier, upstream: str = KEEP_UPSTREAM
    ) -> bool:
        """Record how awake the container of `build_id` on `host_id` is, if it owns the route;
        `upstream` is KEEP_UPSTREAM, NO_UPSTREAM (while it cannot answer) or a new address."""
        key = self.keys.space(subdomain)
        if not self._set_tier_if_owner(keys=[key], args=[build_id, host_id, tier.value, upstream]):
            return False
        self.redis.publish(self.keys.space_changes, subdomain)
        return True

    def delete_route(self, subdomain: str, owner: tuple[int, str] | None = None) -> bool:
        """Stop routing to the space's container; with `owner` (build id, host id), only if the
        route is that container's (a moved app runs the same build on another host)."""
        if owner is None:
            self.redis.hdel(self.keys.space(subdomain), "upstream", "build", "host", "tier")
            removed = True
        else:
            removed = bool(self._clear_if_owner(keys=[self.keys.space(subdomain)], args=list(owner)))
        if removed:
            self.redis.publish(self.keys.space_changes, subdomain)
        return removed

    def remove_space(self, subdomain: str) -> None:
        """Delete a space's record, leave word that it is gone (for its agents, an hour), and tell
        the proxies."""
        pipe = self.redis.pipeline()
        pipe.delete(self.keys.space(subdomain))
        pipe.srem(self.keys.spaces, subdomain)
        pipe.set(self.keys.gone(subdomain), "1", ex=3600)
        pipe.publish(self.keys.space_changes, subdomain)
        pipe.execute()

    def is_gone(self, subdomain: str) -> bool:
        """Whether the space at `subdomain` was removed lately (not merely missing from Redis)."""
        return bool(self.redis.exists(self.keys.gone(subdomain)))

    def get(self, subdomain: str) -> SpaceRecord | None:
        """The record of the space at `subdomain`, if any."""
        return SpaceRecord.from_hash(subdomain, self.redis.hgetall(self.keys.space(subdomain)))

    def get_many(self, subdomains: list[str]) -> dict[str, SpaceRecord]:
        """The records of several spaces in one round trip (missing ones are left out)."""
        unique = list(dict.fromkeys(subdomains))
        pipe = self.redis.pipeline(transaction=False)
        for subdomain in unique:
            pipe.hgetall(self.keys.space(subdomain))
        found = (SpaceRecord.from_hash(s, raw) for s, raw in zip(unique, pipe.execute(), strict=True))
        return {record.subdomain: record for record in found if record is not None}

    def get_all_routes(self) -> dict[str, SpaceRecord]:
        """Every space's record."""
        return self.get_many(sorted(self.subdomains()))
