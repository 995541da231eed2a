"""What a host can run: its capacity (CPU, memory, GPU device ids), what its apps and in-flight jobs
take, and the admission of new jobs. Admission happens under a host-wide lock, so that the agent's
job workers never start more than the host holds, and never give one GPU to two spaces."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import redis

from spacehub.agent.drivers.base import InstanceState, RuntimeDriver
from spacehub.config import Settings
from spacehub.queue.flavors import Flavor, parse_size
from spacehub.state.hosts import Allocation
from spacehub.state.keys import Keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Capacity:
    cpus: float
    memory: int
    gpus: tuple[str, ...]
    gpu_model: str


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def detect_gpus() -> tuple[list[str], str]:
    """GPU indices and model from nvidia-smi; none where there is no NVIDIA driver."""
    if shutil.which("nvidia-smi") is None:
        return [], ""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("nvidia-smi failed (%s): no GPUs offered", exc)
        return [], ""
    rows = [line.split(",", 1) for line in out.strip().splitlines() if line.strip()]
    return [index.strip() for index, _ in rows], (rows[0][1].strip() if rows else "")


def host_capacity(settings: Settings) -> Capacity:
    cpus = settings.agent_cpus if settings.agent_cpus is not None else 4.0 * (os.cpu_count() or 1)
    memory = parse_size(settings.agent_memory) if settings.agent_memory else 2 * physical_memory()
    if settings.agent_gpus is not None:
        gpus, model = list(settings.agent_gpus), settings.agent_gpu_model or ""
    else:
        gpus, model = detect_gpus()
        model = settings.agent_gpu_model or model
    return Capacity(cpus=cpus, memory=memory, gpus=tuple(gpus), gpu_model=model)


def allocation_for(flavor: Flavor, gpus: list[str], space_id: int = 0, build_id: int = 0) -> Allocation:
    return Allocation(
        flavor=flavor.name,
        cpu=flavor.cpu,
        memory=flavor.memory_bytes,
        gpus=gpus,
        space_id=space_id,
        build_id=build_id,
    )


def free_gpus(capacity: Capacity, allocations: list[Allocation]) -> list[str]:
    taken = {gpu for allocation in allocations for gpu in allocation.gpus}
    return [gpu for gpu in capacity.gpus if gpu not in taken]


def fits(capacity: Capacity, allocations: list[Allocation], flavor: Flavor) -> bool:
    """Whether one more app of `flavor` fits beside `allocations`."""
    if sum(a.cpu for a in allocations) + flavor.cpu > capacity.cpus + 1e-9:
        return False
    if sum(a.memory for a in allocations) + flavor.memory_bytes > capacity.memory:
        return False
    return len(free_gpus(capacity, allocations)) >= flavor.gpus


class Admission:
    """Reservations of this host's capacity for jobs between their start and their app's start."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        host_id: str,
        capacity: Capacity,
        driver: RuntimeDriver,
        flavors: dict[str, Flavor],
    ):
        self.redis = client
        self.keys = keys
        self.host_id = host_id
        self.capacity = capacity
        self.driver = driver
        self.flavors = flavors

    @contextlib.contextmanager
    def locked(self, timeout: float = 30.0) -> Iterator[None]:
        """A lock all job workers of this host share (Redis SET NX, with an expiry against crashes)."""
        token = uuid.uuid4().hex
        key = self.keys.admission_lock(self.host_id)
        deadline = time.monotonic() + timeout
        while not self.redis.set(key, token, nx=True, px=30_000):
            if time.monotonic() > deadline:
                raise TimeoutError("the host's admission lock is held too long")
            time.sleep(0.05)
        try:
            yield
        finally:
            if self.redis.get(key) == token.encode():
                self.redis.delete(key)

    def allocations(self) -> list[Allocation]:
        """What this host's apps (running or starting) and in-flight jobs take."""
        taken = []
        for instance in self.driver.list():
            if instance.state == InstanceState.EXITED:
                continue
            flavor = self.flavors.get(instance.labels.get("spacehub.flavor", ""))
            if flavor is None:
                continue
            gpus = [g for g in instance.labels.get("spacehub.gpus", "").split(",") if g]
            taken.append(allocation_for(flavor, gpus, instance.space_id, instance.build_id))
        taken.extend(self.reservations().values())
        return taken

    def reservations(self) -> dict[str, Allocation]:
        raw = self.redis.hgetall(self.keys.reservations(self.host_id))
        return {k.decode(): Allocation(**json.loads(v)) for k, v in raw.items()}

    def reserve(self, job_id: str, flavor: Flavor, gpus: list[str]) -> None:
        self.redis.hset(
            self.keys.reservations(self.host_id), job_id, json.dumps(asdict(allocation_for(flavor, gpus)))
        )

    def reservation(self, job_id: str) -> Allocation | None:
        raw = self.redis.hget(self.keys.reservations(self.host_id), job_id)
        return Allocation(**json.loads(raw)) if raw else None

    def release(self, job_id: str) -> None:
        self.redis.hdel(self.keys.reservations(self.host_id), job_id)
