"""What a host can run: its capacity (CPU, memory, GPU device ids), what its apps and in-flight jobs
take, and the admission of new apps.

Placement counts requests, not limits (as Kubernetes does): an app counts for its flavor's request
(by default the measured footprint of an idle app of its SDK) or for what it really uses when that
is more; GPUs count whole. Admission also checks the host's real free memory. Admission happens
under a host-wide lock, so that the agent's job workers never start more than the host holds, and
never give one GPU to two spaces."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from spacehub.agent.drivers.base import Instance, RuntimeDriver
from spacehub.config import Settings
from spacehub.queue.flavors import Flavor, Resources, format_size, parse_size
from spacehub.state.hosts import Allocation, shortage
from spacehub.state.keys import Keys

log = logging.getLogger(__name__)

MEMINFO = Path("/proc/meminfo")
# Where Docker puts its containers' cgroups: a limit there bounds every app of the host together.
CONTAINERS_CGROUPS = (
    Path("/sys/fs/cgroup/docker"),
    Path("/sys/fs/cgroup/system.slice"),
    Path("/sys/fs/cgroup/memory/docker"),
)


@dataclass(frozen=True)
class Capacity:
    cpus: float
    memory: int
    gpus: tuple[str, ...]
    gpu_model: str
    memory_reserve: int = 0


def physical_memory() -> int:
    """The host's physical memory, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def available_memory() -> int:
    """Memory the host can still give without swapping or reclaiming what apps use: the kernel's
    MemAvailable, or less where the containers' cgroup is limited below it."""
    available = physical_memory()
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    for directory in CONTAINERS_CGROUPS:
        limit = _cgroup_figure(directory, ("memory.max", "memory.limit_in_bytes"))
        used = _cgroup_figure(directory, ("memory.current", "memory.usage_in_bytes"))
        if limit is not None and used is not None and limit < physical_memory():
            available = min(available, max(0, limit - used))
    return available


def _cgroup_figure(directory: Path, names: tuple[str, ...]) -> int | None:
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            text = (directory / name).read_text().strip()
            return None if text == "max" else int(text)
    return None


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
    """What this host offers to spaces' requests (settings, or what it has)."""
    reserve = parse_size(settings.agent_memory_reserve)
    cpus = settings.agent_cpus if settings.agent_cpus is not None else 4.0 * (os.cpu_count() or 1)
    memory = parse_size(settings.agent_memory) if settings.agent_memory else physical_memory() - reserve
    if settings.agent_gpus is not None:
        gpus, model = list(settings.agent_gpus), settings.agent_gpu_model or ""
    else:
        gpus, model = detect_gpus()
        model = settings.agent_gpu_model or model
    return Capacity(cpus=cpus, memory=memory, gpus=tuple(gpus), gpu_model=model, memory_reserve=reserve)


def limits_on(capacity: Capacity, flavor: Flavor) -> Resources:
    """A flavor's limits, never more than the host has."""
    memory = min(flavor.memory_bytes, capacity.memory, physical_memory())
    if memory < flavor.memory_bytes:
        memory -= memory % 1024**2  # whole MiB
    return Resources(cpu=min(flavor.cpu, float(os.cpu_count() or 1)), memory=format_size(memory))


def free_gpus(capacity: Capacity, allocations: list[Allocation]) -> list[str]:
    """The host's GPU device ids that no allocation holds."""
    taken = {gpu for allocation in allocations for gpu in allocation.gpus}
    return [gpu for gpu in capacity.gpus if gpu not in taken]


class Admission:
    """This host's allocations, and reservations of its capacity for jobs (and wakes) between their
    start and their app's start."""

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
        """A lock all job workers of this host share (redis-py's Lock: it expires against crashes and
        is released atomically, only by its holder)."""
        lock = self.redis.lock(self.keys.admission_lock(self.host_id), timeout=30, blocking_timeout=timeout)
        if not lock.acquire():
            raise TimeoutError("the host's admission lock is held too long")
        try:
            yield
        finally:
            with contextlib.suppress(redis.exceptions.LockError):  # expired and taken by another
                lock.release()

    def allocation_of(self, instance: Instance) -> Allocation | None:
        """What one instance takes: its request, or its real use where that is more."""
        flavor = self.flavors.get(instance.flavor)
        if flavor is None or not instance.state.holds_memory:
            return None
        request = flavor.request_for(instance.sdk)
        usage = self.driver.usage(instance.id)
        limits = limits_on(self.capacity, flavor)
        return Allocation(
            flavor=flavor.name,
            cpu=request.cpu,
            memory=request.memory_bytes,
            gpus=instance.gpus,
            space_id=instance.space_id,
            build_id=instance.build_id,
            memory_used=usage.memory if usage else 0,
            cpu_limit=limits.cpu,
            memory_limit=limits.memory_bytes,
        )

    def allocations(self, instances: list[Instance] | None = None) -> list[Allocation]:
        """What this host's apps (running, starting or frozen) and in-flight jobs take."""
        listed = self.driver.list() if instances is None else instances
        taken = [a for i in listed if (a := self.allocation_of(i)) is not None]
        taken.extend(self.reservations().values())
        return taken

    def short_of(self, flavor: Flavor, request: Resources, allocations: list[Allocation]) -> str | None:
        """What this host lacks for one more app of `flavor` (`state.hosts.shortage`)."""
        capacity = self.capacity
        return shortage(
            capacity.cpus,
            capacity.memory,
            capacity.gpus,
            allocations,
            cpu=request.cpu,
            memory=request.memory_bytes,
            gpus=flavor.gpus,
            available=available_memory(),
            reserve=capacity.memory_reserve,
        )

    def reservations(self) -> dict[str, Allocation]:
        """The capacity held for jobs (and wakes) whose app has not started yet, by job id."""
        raw = self.redis.hgetall(self.keys.reservations(self.host_id))
        return {k.decode(): Allocation(**json.loads(v)) for k, v in raw.items()}

    def reserve(self, job_id: str, flavor: Flavor, request: Resources, gpus: list[str]) -> None:
        """Hold the flavor's request and `gpus` for a job until its app runs or the job ends."""
        allocation = Allocation(flavor=flavor.name, cpu=request.cpu, memory=request.memory_bytes, gpus=gpus)
        self.redis.hset(self.keys.reservations(self.host_id), job_id, json.dumps(asdict(allocation)))

    def reservation(self, job_id: str) -> Allocation | None:
        """What a job holds, if anything."""
        raw = self.redis.hget(self.keys.reservations(self.host_id), job_id)
        return Allocation(**json.loads(raw)) if raw else None

    def release(self, job_id: str) -> None:
        """Give back what a job held."""
        self.redis.hdel(self.keys.reservations(self.host_id), job_id)
