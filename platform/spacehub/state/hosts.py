"""Hosts as their agents describe them through Redis: flavors, capacity, usage, heartbeats.

A host's record expires when its heartbeats stop; the controller reschedules its spaces then."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from spacehub.state.keys import Keys


@dataclass
class Allocation:
    """What one app (or a job about to start one) takes of a host: its request (`cpu`, `memory`:
    what placement counts), its limits, and what it really uses."""

    flavor: str
    cpu: float
    memory: int
    gpus: list[str] = field(default_factory=list)
    space_id: int = 0
    build_id: int = 0
    memory_used: int = 0
    cpu_used: float = 0.0
    cpu_limit: float = 0.0
    memory_limit: int = 0
    tier: str = ""

    @property
    def counted_memory(self) -> int:
        """What placement counts: the request, or what the app really uses when that is more."""
        return max(self.memory, self.memory_used)


@dataclass
class HostRecord:
    host: str
    flavors: list[str]
    cpus: float
    memory: int
    gpus: list[str]
    gpu_model: str
    driver: str
    advertise: str
    last_seen: float
    allocations: list[Allocation] = field(default_factory=list)
    disk: dict[str, int] = field(default_factory=dict)
    pid: int = 0
    memory_available: int = 0
    tiers: dict[str, int] = field(default_factory=dict)

    @property
    def used_cpu(self) -> float:
        """vCPUs requested by the host's apps and in-flight jobs."""
        return sum(a.cpu for a in self.allocations)

    @property
    def used_memory(self) -> int:
        """Memory placement counts as taken (requests, or real use where that is more)."""
        return sum(a.counted_memory for a in self.allocations)

    @property
    def real_memory(self) -> int:
        """Memory the host's apps really use."""
        return sum(a.memory_used for a in self.allocations)

    @property
    def used_gpus(self) -> list[str]:
        return sorted({g for a in self.allocations for g in a.gpus})

    def to_fields(self) -> dict[str, str]:
        data = asdict(self)
        return {"record": json.dumps(data)}

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> HostRecord | None:
        raw = fields.get(b"record") or fields.get("record")
        if not raw:
            return None
        data = json.loads(raw)
        data["allocations"] = [Allocation(**a) for a in data.get("allocations", [])]
        return cls(**data)


class HostDirectory:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.redis = client
        self.keys = keys

    def heartbeat(self, record: HostRecord, ttl: float) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.host(record.host), mapping=record.to_fields())
        pipe.expire(self.keys.host(record.host), max(1, int(ttl)))
        pipe.sadd(self.keys.hosts, record.host)
        pipe.execute()

    def get(self, host: str) -> HostRecord | None:
        return HostRecord.from_fields(self.redis.hgetall(self.keys.host(host)))

    def alive(self) -> dict[str, HostRecord]:
        records = {}
        for raw in self.redis.smembers(self.keys.hosts):
            name = raw.decode()
            record = self.get(name)
            if record is not None:
                records[name] = record
        return records

    def known(self) -> set[str]:
        return {raw.decode() for raw in self.redis.smembers(self.keys.hosts)}

    def forget(self, host: str) -> None:
        self.redis.srem(self.keys.hosts, host)
