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
    memory_reserve: int = 0
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
        """The GPU device ids the host's apps hold."""
        return sorted({g for a in self.allocations for g in a.gpus})

    def shortage(self, cpu: float, memory: int, gpus: int) -> str | None:
        """What this host lacks for one more app requesting `cpu`, `memory` and `gpus` (see
        `shortage`); None when it fits."""
        return shortage(
            self.cpus,
            self.memory,
            self.gpus,
            self.allocations,
            cpu=cpu,
            memory=memory,
            gpus=gpus,
            available=self.memory_available,
            reserve=self.memory_reserve,
        )

    def describe_shortage(self, what: str) -> str:
        """`what` the host lacks, with its figures, for the message of a space that waits."""
        if what == "gpus":
            return f"{len(self.used_gpus)} of {len(self.gpus)} GPUs in use"
        if what == "cpu":
            return f"{self.used_cpu:g} of {self.cpus:g} vCPUs requested"
        gib = 1024**3
        return (
            f"{self.used_memory / gib:.1f} of {self.memory / gib:.1f} GiB requested, "
            f"{self.memory_available / gib:.1f} GiB free"
        )

    def to_fields(self) -> dict[str, str]:
        """The record as the fields of its Redis hash (one JSON field)."""
        data = asdict(self)
        return {"record": json.dumps(data)}

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> HostRecord | None:
        """The record a host's Redis hash holds, or None when it is empty (expired)."""
        raw = fields.get(b"record") or fields.get("record")
        if not raw:
            return None
        data = json.loads(raw)
        data["allocations"] = [Allocation(**a) for a in data.get("allocations", [])]
        return cls(**data)


def shortage(
    capacity_cpus: float,
    capacity_memory: int,
    capacity_gpus: list[str] | tuple[str, ...],
    allocations: list[Allocation],
    *,
    cpu: float,
    memory: int,
    gpus: int,
    available: int,
    reserve: int,
) -> str | None:
    """What a host lacks for one more app (`gpus`, `cpu` or `memory`), or None when it fits.

    The policy (requests, not limits): the requests of its apps, counted at their real use where
    that is more, plus the new one must fit what the host offers; its whole GPUs must be free; and
    the host's real free memory must stay above its reserve once the new app has its request."""
    taken = {gpu for allocation in allocations for gpu in allocation.gpus}
    if len([g for g in capacity_gpus if g not in taken]) < gpus:
        return "gpus"
    if sum(a.cpu for a in allocations) + cpu > capacity_cpus + 1e-9:
        return "cpu"
    if sum(a.counted_memory for a in allocations) + memory > capacity_memory:
        return "memory"
    if available - memory < reserve:
        return "memory"
    return None


class HostDirectory:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.redis = client
        self.keys = keys

    def heartbeat(self, record: HostRecord, ttl: float) -> None:
        """Write the host's record, to expire after `ttl` seconds without another heartbeat."""
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.host(record.host), mapping=record.to_fields())
        pipe.expire(self.keys.host(record.host), max(1, int(ttl)))
        pipe.sadd(self.keys.hosts, record.host)
        pipe.execute()

    def get(self, host: str) -> HostRecord | None:
        """The host's current record, or None once its heartbeats stopped."""
        return HostRecord.from_fields(self.redis.hgetall(self.keys.host(host)))

    def alive(self) -> dict[str, HostRecord]:
        """The hosts whose record has not expired, by name."""
        records = {}
        for raw in self.redis.smembers(self.keys.hosts):
            name = raw.decode()
            record = self.get(name)
            if record is not None:
                records[name] = record
        return records

    def known(self) -> set[str]:
        """Every host that ever registered, alive or not."""
        return {raw.decode() for raw in self.redis.smembers(self.keys.hosts)}
