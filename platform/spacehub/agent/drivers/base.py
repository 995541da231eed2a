"""The small interface through which an agent runs apps on its host (JupyterHub's Spawner, for
spaces). Docker is the production driver; others implement the same few methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from spacehub.build.logsink import LogSink
from spacehub.config import Settings
from spacehub.queue.flavors import Flavor
from spacehub.queue.spec import DeploySpec


class InstanceState(StrEnum):
    RUNNING = "running"
    FROZEN = "frozen"  # paused: by the platform (an idle tier) or by someone else
    RESTARTING = "restarting"  # the engine restarts it by itself (a restart policy set from outside)
    EXITED = "exited"
    CREATED = "created"

    @property
    def holds_memory(self) -> bool:
        """Whether an instance in this state takes memory on its host."""
        return self in (InstanceState.RUNNING, InstanceState.FROZEN, InstanceState.RESTARTING)


@dataclass(frozen=True)
class Instance:
    """One app process or container this host runs for a space."""

    id: str
    space_id: int
    build_id: int
    subdomain: str
    state: InstanceState
    upstream: str = ""
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def sdk(self) -> str:
        """The SDK the app was built for (`gradio`, `streamlit`, `docker`...), from its labels."""
        return self.labels.get("spacehub.sdk", "")

    @property
    def flavor(self) -> str:
        """The name of the hardware flavor the app was started on, from its labels."""
        return self.labels.get("spacehub.flavor", "")

    @property
    def gpus(self) -> list[str]:
        """The ids of the GPUs the app was given; empty for a CPU app."""
        return [g for g in self.labels.get("spacehub.gpus", "").split(",") if g]

    @property
    def root_path(self) -> str:
        """The prefix the app serves under (path routing), empty otherwise; health probes use it."""
        return self.labels.get("spacehub.root_path", "")

    @property
    def startup_timeout(self) -> int | None:
        """Seconds the app may take to become healthy (its startup_duration_timeout); None if unknown."""
        value = self.labels.get("spacehub.startup_timeout", "")
        return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class Usage:
    """What an instance uses now: memory (bytes) and CPU time since it started (seconds)."""

    memory: int
    cpu_seconds: float


@dataclass(frozen=True)
class Mount:
    """A host directory the app sees at `target` (a volume)."""

    source: str
    target: str
    read_only: bool


@dataclass(frozen=True)
class LaunchSpec:
    """How to start one app: what the driver needs, already decided by the agent."""

    name: str
    artifact: str
    space_id: int
    build_id: int
    subdomain: str
    port: int
    env: dict[str, str]
    flavor: Flavor
    sdk: str
    memory_limit: int
    cpu_limit: float
    startup_timeout: int
    root_path: str = ""
    gpu_ids: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()

    def labels(self) -> dict[str, str]:
        """What the instance carries so that an agent that restarts knows it again."""
        return {
            "spacehub.space": str(self.space_id),
            "spacehub.build": str(self.build_id),
            "spacehub.subdomain": self.subdomain,
            "spacehub.port": str(self.port),
            "spacehub.flavor": self.flavor.name,
            "spacehub.sdk": self.sdk,
            "spacehub.root_path": self.root_path,
            "spacehub.startup_timeout": str(self.startup_timeout),
            "spacehub.memory_limit": str(self.memory_limit),
            "spacehub.gpus": ",".join(self.gpu_ids),
        }


class DriverHost(Protocol):
    """What a driver knows of the agent that runs it: no more than this."""

    @property
    def settings(self) -> Settings:
        """The agent's settings: the driver's paths, tools, limits and package indexes."""

    @property
    def host_id(self) -> str:
        """The id of this host; the driver labels its instances with it."""

    @property
    def instance_id(self) -> str:
        """The id of this installation, which names and labels its images and containers on the host."""


def builds_to_keep(builds: Iterable[int], wanted: set[int]) -> set[int]:
    """The image prune policy: the builds a space still wants (live, in progress), and the newest
    earlier one of them as a way back."""
    if not wanted:
        return set()
    older = [b for b in builds if b < max(wanted)]
    return wanted | ({max(older)} if older else set())


class RuntimeDriver(ABC):
    """Builds and runs apps on one host. Stop is idempotent: stopping what is gone succeeds."""

    # Whether `start` mounts `LaunchSpec.mounts` (volumes) into the app's file system.
    mounts_volumes = False

    def prepare(self) -> None:  # noqa: B027 - most drivers need no preparation
        """Set up what the host needs before apps run (networks, firewall rules); idempotent."""

    def host_address(self) -> str:
        """The address apps use to reach this host (its edge proxy)."""
        return "127.0.0.1"

    @abstractmethod
    def build(self, spec: DeploySpec, source: Path, log: LogSink) -> str:
        """Turn the checked-out `source` into something `start` can run (an image tag...)."""

    @abstractmethod
    def find_artifact(self, spec: DeploySpec) -> str | None:
        """The runnable result of an earlier build of `spec` on this host, if it is still here."""

    def push_artifact(self, artifact: str, registry: str) -> None:  # noqa: B027 - optional
        """Share a built artifact through a registry (drivers without one ignore it)."""

    def pull_artifact(self, spec: DeploySpec, registry: str) -> str | None:
        """The build's artifact fetched from a registry, or None."""
        return None

    def prune(self, keep: dict[int, set[int]], cache_limit: str) -> None:  # noqa: B027 - optional
        """Remove artifacts of builds not in `keep` (space id -> build ids), keeping the newest
        earlier one of each space as a way back; bound the build cache to `cache_limit`."""

    def disk_usage(self) -> dict[str, int]:
        """Bytes this driver holds on the host's disk, by kind."""
        return {}

    @abstractmethod
    def start(self, launch: LaunchSpec) -> Instance:
        """Start the app; returns once it is started (not necessarily healthy)."""

    @abstractmethod
    def stop(self, instance_id: str, timeout: float = 10.0) -> None:
        """Stop the app and release what it holds (idempotent)."""

    @abstractmethod
    def poll(self, instance_id: str) -> Instance | None:
        """The app's current state (exit code and OOM kill included), or None if it is gone."""

    @abstractmethod
    def freeze(self, instance_id: str) -> None:
        """Freeze the app's processes: no CPU, memory kept (idempotent)."""

    @abstractmethod
    def thaw(self, instance_id: str) -> None:
        """Let a frozen app run again (idempotent)."""

    @abstractmethod
    def halt(self, instance_id: str, timeout: float = 10.0) -> None:
        """Stop the app but keep the instance, so that `resume` starts it again (idempotent)."""

    @abstractmethod
    def resume(self, instance_id: str) -> Instance | None:
        """Start a halted or exited instance again, as it was; None if it is gone."""

    @abstractmethod
    def logs(
        self, instance_id: str, *, follow: bool, since: float | None = None, tail: int | None = None
    ) -> Iterator[tuple[str, str]]:
        """(ISO timestamp, line) pairs of the app's output."""

    @abstractmethod
    def usage(self, instance_id: str) -> Usage | None:
        """What the instance uses now (cheap enough to ask of every app every few seconds)."""

    @abstractmethod
    def list(self) -> list[Instance]:
        """Every app instance of this installation on this host (exit codes are read by `poll`)."""
