"""What an agent process (and the jobs it runs) shares: settings, Redis, the runtime driver, and
the hub client. Built lazily from the environment, so that RQ's work horses can make their own."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

import httpx
import redis

from spacehub.agent.capacity import Admission, host_capacity
from spacehub.agent.drivers.base import Instance, RuntimeDriver
from spacehub.agent.drivers.docker import DockerDriver
from spacehub.agent.drivers.process import ProcessDriver
from spacehub.config import Settings, get_settings
from spacehub.queue.flavors import Flavor, load_flavors
from spacehub.queue.spec import DeploySpec
from spacehub.state.connection import connect
from spacehub.state.events import Event, EventStream, EventType
from spacehub.state.keys import Keys
from spacehub.state.routes import RouteTable

log = logging.getLogger(__name__)
T = TypeVar("T")


class HubUnavailable(RuntimeError):
    pass


@dataclass
class HubClient:
    """The controllers' internal API, as agents use it: the first controller that answers."""

    base_urls: list[str]
    token: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=httpx.Timeout(30.0, read=300.0),
        )

    def fetch_spec(self, build_id: int) -> DeploySpec | None:
        """The spec of a build, or None if the build (or its space) is gone."""
        response = self._retrying(lambda base: self.client.get(f"{base}/api/internal/builds/{build_id}/spec"))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return DeploySpec.model_validate(response.json())

    def download_archive(self, build_id: int, destination: str) -> None:
        """Save the build's source archive to `destination`, streamed."""
        self._download(f"/api/internal/builds/{build_id}/archive", destination)

    def _download(self, path: str, destination: str) -> None:
        def download(base: str) -> None:
            with self.client.stream("GET", f"{base}{path}") as response:
                response.raise_for_status()
                with open(destination, "wb") as handle:
                    for chunk in response.iter_bytes(1 << 16):
                        handle.write(chunk)

        self._retrying(download)

    def download_repo_archive(self, repo_id: int, sha: str, destination: str) -> None:
        """Save a repository's commit as a tar archive to `destination` (a repository volume)."""
        self._download(f"/api/internal/repos/{repo_id}/archive/{sha}", destination)

    def _retrying(self, call: Callable[[str], T]) -> T:
        """`call` on each controller in turn until one answers, for about 15 s."""
        for attempt in range(5):
            for base in self.base_urls:
                try:
                    return call(base)
                except httpx.TransportError as exc:
                    log.warning("hub unreachable at %s (%s)", base, exc)
            time.sleep(1 + attempt)
        raise HubUnavailable(f"the hub is unreachable at {', '.join(self.base_urls)}")


@dataclass
class AgentContext:
    settings: Settings
    redis: redis.Redis

    @classmethod
    def from_env(cls) -> AgentContext:
        """A context from the environment's settings (what each RQ work horse makes for itself)."""
        settings = get_settings()
        return cls(settings=settings, redis=connect(settings.resolved_redis_url))

    @cached_property
    def keys(self) -> Keys:
        """The names of this installation's Redis keys."""
        return Keys(self.settings.namespace)

    @cached_property
    def routes(self) -> RouteTable:
        """The route table in Redis, which the edge proxies follow."""
        return RouteTable(self.redis, self.keys)

    @cached_property
    def events(self) -> EventStream:
        """The event stream through which the agent reports to the controller."""
        return EventStream(self.redis, self.keys)

    @cached_property
    def flavors(self) -> dict[str, Flavor]:
        """The hardware flavors of the installation, by name."""
        return load_flavors(self.settings.flavors_file)

    @property
    def host_id(self) -> str:
        """The name of this host."""
        return self.settings.host_id

    @cached_property
    def hub(self) -> HubClient:
        """A client of the controller's internal API, with the internal token."""
        return HubClient(
            self.settings.controllers_from(self.settings.resolved_hub_url),
            self.settings.resolved_internal_token,
        )

    @cached_property
    def instance(self) -> dict[str, str]:
        """Facts the controller published about this installation (waits for them)."""
        for _ in range(120):
            raw = self.redis.hgetall(self.keys.instance)
            if raw:
                return {k.decode(): v.decode() for k, v in raw.items()}
            log.info("waiting for the controller to publish the installation's details")
            time.sleep(1)
        raise HubUnavailable("the controller has not published this installation's details in Redis")

    @property
    def instance_id(self) -> str:
        """The installation's id, as the controller published it."""
        return self.instance["id"]

    @cached_property
    def driver(self) -> RuntimeDriver:
        """The runtime this host runs apps with (settings: `agent_driver`)."""
        if self.settings.agent_driver == "process":
            return ProcessDriver(self)
        return DockerDriver(self)

    @cached_property
    def admission(self) -> Admission:
        """This host's capacity and what takes it."""
        return Admission(
            self.redis, self.keys, self.host_id, host_capacity(self.settings), self.driver, self.flavors
        )

    @cached_property
    def hub_url_for_apps(self) -> str:
        """HF_ENDPOINT inside apps: the hub as seen from the apps' network."""
        if self.settings.apps_hub_url:
            return self.settings.apps_hub_url.rstrip("/")
        return f"http://{self.driver.host_address()}:{self.settings.port}"

    def last_visits(self, space_ids: list[int]) -> dict[int, float]:
        """When each space last had a visitor (the edge records it), for those that ever had one."""
        if not space_ids:
            return {}
        scores = self.redis.zmscore(self.keys.activity, [str(i) for i in space_ids])
        return {i: float(s) for i, s in zip(space_ids, scores, strict=True) if s is not None}

    def mark_awake(self, *space_ids: int) -> None:
        """Idle time of these spaces counts from now (their app just started, thawed or woke)."""
        if space_ids:
            self.redis.zadd(self.keys.activity, {str(i): time.time() for i in space_ids}, gt=True)

    def report_instance(
        self, type: EventType, instance: Instance, *, message: str = "", upstream: str = ""
    ) -> None:
        """Tell the controller what became of a running app (it slept, woke, crashed)."""
        self.events.publish(
            Event(
                type=type,
                space_id=instance.space_id,
                build_id=instance.build_id,
                host=self.host_id,
                message=message,
                container=instance.id,
                upstream=upstream,
            )
        )

    def report(
        self,
        type: EventType,
        spec: DeploySpec,
        *,
        message: str = "",
        container: str = "",
        upstream: str = "",
        image: str = "",
    ) -> None:
        """Tell the controller what happened to the build `spec` on this host."""
        self.events.publish(
            Event(
                type=type,
                space_id=spec.space_id,
                build_id=spec.build_id,
                host=self.host_id,
                message=message,
                container=container,
                upstream=upstream,
                image=image,
            )
        )
