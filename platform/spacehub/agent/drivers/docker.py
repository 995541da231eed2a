"""The production driver: apps as Docker containers, as untrusted code.

Every container runs as uid 1000 with its flavor's CPU, memory and process limits, all
capabilities dropped, no new privileges, no Docker socket, on the firewalled apps network."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import DeviceRequest, LogConfig
from docker.types import Mount as DockerMount

from spacehub.agent.drivers.base import (
    DriverHost,
    Instance,
    InstanceState,
    LaunchSpec,
    RuntimeDriver,
    Usage,
    builds_to_keep,
)
from spacehub.agent.drivers.cgroups import container_usage
from spacehub.agent.network import ensure_app_network, gateway_address, guard_app_network, guard_bridge
from spacehub.build.context import (
    SECRETS_DIGEST_ARG,
    keyed_by_secrets,
    needs_torch,
    render_sdk_dockerfile,
    secrets_digest,
    without_syntax_directive,
)
from spacehub.build.dockercli import build_image, find_docker_cli
from spacehub.build.errors import BuildFailed
from spacehub.build.logsink import LogSink
from spacehub.build.runtimes import Runtimes
from spacehub.config import APP_UID
from spacehub.queue.flavors import parse_size
from spacehub.queue.spec import DeploySpec
from spacehub.signing import derive_key
from spacehub.spec.config import PreloadEntry

log = logging.getLogger(__name__)

LABEL = "spacehub"
BUILD_SECRETS_PURPOSE = b"spacehub build secrets digest v1"
_DOCKER_TIMESTAMP = re.compile(
    r"^(?P<seconds>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?Z ?(?P<text>.*)$", re.S
)


class DockerDriver(RuntimeDriver):
    mounts_volumes = True

    def __init__(self, agent: DriverHost):
        self.agent = agent
        self.settings = agent.settings
        self.client = docker.from_env(timeout=300)
        self._cli: str | None = None
        self._runtimes: Runtimes | None = None

    @property
    def cli(self) -> str:
        """The path of the docker CLI (which runs the builds), found on first use."""
        if self._cli is None:
            self._cli = find_docker_cli(self.settings.docker_cli)
        return self._cli

    @property
    def runtimes(self) -> Runtimes:
        """The SDK runtime images this host builds apps on, made on first use."""
        if self._runtimes is None:
            self._runtimes = Runtimes(self.settings, self.client, self.cli)
        return self._runtimes

    @property
    def network_name(self) -> str:
        """The firewalled network this installation's apps run on."""
        return f"{self.settings.namespace}-apps"

    def _labels(self) -> dict[str, str]:
        return {f"{LABEL}.instance": self.agent.instance_id, f"{LABEL}.host": self.agent.host_id}

    # Networking ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the apps network and firewall it (and, unless disabled, the builds' network)."""
        ensure_app_network(self.client, self.network_name)
        ports, blocked = [self.settings.port], self.settings.app_blocked_networks
        guard_app_network(self.network_name, ports, blocked)
        if self.settings.guard_build_network:
            guard_bridge(self._default_bridge(), "SPACEHUB-BUILDS", ports, blocked)

    def _default_bridge(self) -> str:
        options = self.client.networks.get("bridge").attrs.get("Options") or {}
        return str(options.get("com.docker.network.bridge.name", "docker0"))

    def build_hub_url(self) -> str:
        """HF_ENDPOINT for build steps (preload_from_hub), which run on Docker's default bridge."""
        if self.settings.apps_hub_url:
            return self.settings.apps_hub_url.rstrip("/")
        return f"http://{gateway_address(self.client.networks.get('bridge'))}:{self.settings.port}"

    def host_address(self) -> str:
        """Docker: the apps network's gateway, where containers reach this host."""
        return gateway_address(ensure_app_network(self.client, self.network_name))

    # Build --------------------------------------------------------------------------------------

    def image_tag(self, spec: DeploySpec) -> str:
        """The image tag of a build of a space, unique to this installation."""
        return f"spacehub/app-{self.agent.instance_id}-{spec.space_id}:b{spec.build_id}"

    def build(self, spec: DeploySpec, source: Path, log_writer: LogSink) -> str:
        """Docker: an image from the space's Dockerfile, or from its SDK's template; returns its tag."""
        tag = self.image_tag(spec)
        with tempfile.TemporaryDirectory(prefix="spacehub-build-") as tmp:
            dockerfile = Path(tmp) / "Dockerfile"
            if spec.sdk == "docker":
                self.build_dockerfile(spec, source, dockerfile, tag, log_writer)
            else:
                self.build_sdk(spec, source, dockerfile, tag, log_writer)
        return tag

    def build_dockerfile(
        self, spec: DeploySpec, source: Path, dockerfile: Path, tag: str, log_writer: LogSink
    ) -> None:
        """A `sdk: docker` space: its own Dockerfile, variables as build args, secrets as mounts."""
        text, dropped = without_syntax_directive((source / "Dockerfile").read_text(errors="replace"))
        if dropped:
            log_writer.write("==> Ignoring the `# syntax=` line: builds use the built-in Dockerfile frontend")
        self.runtimes.ensure_dockerfile_bases(text, log_writer)
        build_args = dict(spec.variables)
        if spec.secrets:
            text = keyed_by_secrets(text)
            key = derive_key(self.settings.resolved_internal_token, BUILD_SECRETS_PURPOSE)
            build_args[SECRETS_DIGEST_ARG] = secrets_digest(key, spec.secrets)
        dockerfile.write_text(text)
        with _secret_files(spec.secrets) as secrets:
            log_writer.write(f"==> Building {spec.space_name} from its Dockerfile")
            build_image(
                self.cli,
                source,
                tag,
                log_writer,
                dockerfile=dockerfile,
                build_args=build_args,
                secrets=secrets,
                no_cache=spec.factory,
                timeout=self.settings.build_timeout,
            )

    def build_sdk(
        self, spec: DeploySpec, source: Path, dockerfile: Path, tag: str, log_writer: LogSink
    ) -> None:
        """A Gradio or Streamlit space: its SDK's template on the matching runtime image."""
        python = spec.python_version or self.settings.default_python_version
        sdk_version = spec.sdk_version or self._default_sdk_version(spec.sdk)
        torch = ("cuda" if spec.flavor.is_gpu else "cpu") if needs_torch(source) else None
        base = self.runtimes.ensure_sdk(spec.sdk, sdk_version, python, log_writer, torch=torch)
        preload = [PreloadEntry.parse(item) for item in spec.preload_from_hub]
        dockerfile.write_text(
            render_sdk_dockerfile(
                self.settings.templates_dir,
                spec.sdk,
                base_image=base,
                app_file=spec.app_file,
                source=source,
                preload=preload,
            )
        )
        log_writer.write(f"==> Building {spec.space_name} on {base}")
        build_args = self.runtimes.pip_build_args()
        if preload:
            build_args["HF_ENDPOINT"] = self.build_hub_url()
        build_image(
            self.cli,
            source,
            tag,
            log_writer,
            dockerfile=dockerfile,
            build_args=build_args,
            no_cache=spec.factory,
            timeout=self.settings.build_timeout,
        )

    def find_artifact(self, spec: DeploySpec) -> str | None:
        """Docker: the build's image tag, if the image is still on this host."""
        tag = self.image_tag(spec)
        return tag if self.runtimes.has_image(tag) else None

    def push_artifact(self, artifact: str, registry: str) -> None:
        """Docker: tag the image under `registry` and push it there."""
        remote = f"{registry.rstrip('/')}/{artifact}"
        repository, tag = remote.rsplit(":", 1)
        self.client.images.get(artifact).tag(repository, tag)
        for status in self.client.images.push(repository, tag, stream=True, decode=True):
            if "error" in status:
                raise BuildFailed(f"pushing to {registry} failed: {status['error']}")

    def pull_artifact(self, spec: DeploySpec, registry: str) -> str | None:
        """Docker: pull the build's image from `registry`, tagged as a local build; None if it is missing."""
        tag = self.image_tag(spec)
        repository, version = f"{registry.rstrip('/')}/{tag}".rsplit(":", 1)
        try:
            image = self.client.images.pull(repository, tag=version)
        except docker.errors.APIError as exc:
            log.info("%s:%s is not in the registry (%s); building", repository, version, exc)
            return None
        local_repository, local_tag = tag.rsplit(":", 1)
        image.tag(local_repository, local_tag)
        return tag

    def app_images(self) -> dict[int, dict[int, str]]:
        """This installation's app images on this host: space id -> build id -> tag."""
        prefix = f"spacehub/app-{self.agent.instance_id}-"
        images: dict[int, dict[int, str]] = {}
        for image in self.client.images.list(name="spacehub/*"):
            for tag in image.tags:
                repository, _, version = tag.rpartition(":")
                if repository.startswith(prefix) and version.startswith("b") and version[1:].isdigit():
                    images.setdefault(int(repository[len(prefix) :]), {})[int(version[1:])] = tag
        return images

    def prune(self, keep: dict[int, set[int]], cache_limit: str) -> None:
        """Docker: remove the unwanted app images, then prune the builder cache to `cache_limit`."""
        for space_id, builds in self.app_images().items():
            wanted = builds_to_keep(builds, keep.get(space_id, set()))
            for build_id, tag in builds.items():
                if build_id in wanted:
                    continue
                try:
                    self.client.images.remove(tag)
                    log.info("removed image %s", tag)
                except docker.errors.APIError as exc:  # still used by a container being removed
                    log.debug("keeping %s for now: %s", tag, exc)
        limit = str(parse_size(cache_limit))
        subprocess.run(
            [self.cli, "builder", "prune", "--force", "--keep-storage", limit],
            capture_output=True,
            timeout=600,
        )

    def disk_usage(self) -> dict[str, int]:
        """Docker: the engine's images, container layers, build cache and shared layers."""
        usage = self.client.df()
        return {
            "images": int(sum(i.get("Size", 0) for i in usage.get("Images") or [])),
            "containers": int(sum(c.get("SizeRw", 0) or 0 for c in usage.get("Containers") or [])),
            "build_cache": int(sum(b.get("Size", 0) for b in usage.get("BuildCache") or [])),
            "layers": int(usage.get("LayersSize") or 0),
        }

    def _default_sdk_version(self, sdk: str) -> str:
        return (
            self.settings.default_gradio_version
            if sdk == "gradio"
            else self.settings.default_streamlit_version
        )

    # Run ----------------------------------------------------------------------------------------

    def start(self, launch: LaunchSpec) -> Instance:
        """Docker: a container as uid 1000 with the flavor's limits, no capabilities, on the apps network."""
        self.remove_container(launch.name)  # a leftover of an interrupted attempt
        device_requests = (
            [DeviceRequest(driver="nvidia", device_ids=list(launch.gpu_ids), capabilities=[["gpu"]])]
            if launch.gpu_ids and self.gpu_device_requests
            else []
        )
        container = self.client.containers.run(
            launch.artifact,
            detach=True,
            name=launch.name,
            labels={**self._labels(), **launch.labels()},
            environment=launch.env,
            user=f"{APP_UID}:{APP_UID}",
            network=self.network_name,
            nano_cpus=int(launch.cpu_limit * 1e9),
            mem_limit=launch.memory_limit,
            memswap_limit=launch.memory_limit,
            pids_limit=launch.flavor.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,
            device_requests=device_requests,
            mounts=[
                DockerMount(m.target, m.source, type="bind", read_only=m.read_only) for m in launch.mounts
            ],
            log_config=LogConfig(type="json-file", config={"max-size": "20m", "max-file": "2"}),
            ports=self._ports(launch.port),
        )
        return self._instance(self._reload(container))

    @cached_property
    def gpu_device_requests(self) -> bool:
        """Whether GPUs go through Docker's device requests (the NVIDIA toolkit is installed) or only
        through NVIDIA_VISIBLE_DEVICES (`gpu_mode=env`, or no toolkit)."""
        mode = self.settings.gpu_mode
        if mode != "auto":
            return mode == "device-request"
        runtimes = self.client.info().get("Runtimes") or {}
        return "nvidia" in runtimes or shutil.which("nvidia-container-runtime-hook") is not None

    def _ports(self, port: int) -> Any:
        # (address, None): publish on `address`, on a port the engine picks.
        return {f"{port}/tcp": (self.settings.advertise_address, None)} if self._publishes else None

    @property
    def _publishes(self) -> bool:
        """Local proxies reach containers on the bridge directly; remote ones need a published port."""
        return not self.settings.advertise_address.startswith("127.")

    def stop(self, instance_id: str, timeout: float = 10.0) -> None:
        """Docker: stop the container, then remove it."""
        self.halt(instance_id, timeout)
        self.remove_container(instance_id)

    def halt(self, instance_id: str, timeout: float = 10.0) -> None:
        """Docker: `docker stop` (unpausing a paused container first, so that it gets the signal)."""
        container = self._container(instance_id)
        if container is None:
            return
        try:
            if container.status == "paused":  # signals wait for a thaw under the cgroup v1 freezer
                container.unpause()
            container.stop(timeout=int(timeout))
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            log.warning("stopping %s: %s", instance_id, exc)

    def freeze(self, instance_id: str) -> None:
        """Docker: `docker pause` (the cgroup freezer)."""
        self._state_change(instance_id, "pause", "already paused")

    def thaw(self, instance_id: str) -> None:
        """Docker: `docker unpause`."""
        self._state_change(instance_id, "unpause", "not paused")

    def _state_change(self, instance_id: str, action: str, done_already: str) -> None:
        try:
            self.client.api.pause(instance_id) if action == "pause" else self.client.api.unpause(instance_id)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or done_already not in str(exc):
                raise

    def resume(self, instance_id: str) -> Instance | None:
        """Docker: unpause a paused container, start a stopped one."""
        container = self._container(instance_id)
        if container is None:
            return None
        try:
            if container.status == "paused":
                container.unpause()
            else:
                container.start()
        except docker.errors.NotFound:
            return None
        return self._instance(self._reload(container))

    def _container(self, instance_id: str) -> Container | None:
        try:
            return self.client.containers.get(instance_id)
        except docker.errors.NotFound:
            return None

    def remove_container(self, name_or_id: str) -> None:
        """Remove a container by force, if it exists (a removal already under way counts as done)."""
        try:
            self.client.containers.get(name_or_id).remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # removal already in progress
                raise

    def poll(self, instance_id: str) -> Instance | None:
        """Docker: the container's state from the engine."""
        container = self._container(instance_id)
        return self._instance(container) if container is not None else None

    def logs(
        self, instance_id: str, *, follow: bool, since: float | None = None, tail: int | None = None
    ) -> Iterator[tuple[str, str]]:
        """Docker: the container's log stream, split at line ends."""
        try:
            container = self.client.containers.get(instance_id)
            stream = container.logs(
                stream=True, follow=follow, timestamps=True, since=since, tail=tail if tail else "all"
            )
        except docker.errors.NotFound:
            return
        pending = b""
        for chunk in stream:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield _split_timestamp(line.decode(errors="replace"))
        if pending:
            yield _split_timestamp(pending.decode(errors="replace"))

    def usage(self, instance_id: str) -> Usage | None:
        """Docker: read from the container's cgroup, else the engine's stats (less the page cache)."""
        found = container_usage(instance_id)
        if found is not None:
            return found
        try:  # the cgroup is not visible from here (an agent in a container): ask the engine
            raw: dict[str, Any] = self.client.api.stats(instance_id, stream=False, one_shot=True)
        except (docker.errors.NotFound, ValueError):
            return None  # gone, or going: the engine answers an empty body for a container being removed
        memory = raw.get("memory_stats", {})
        stats = memory.get("stats", {})
        cache = stats.get("inactive_file", stats.get("total_inactive_file", 0))
        cpu_ns = raw.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0)
        return Usage(memory=max(0, int(memory.get("usage", 0)) - int(cache)), cpu_seconds=cpu_ns / 1e9)

    def list(self) -> list[Instance]:
        """Docker: the containers labelled with this installation and host, stopped ones included."""
        filters: dict[str, str | list[str] | bool] = {
            "label": [f"{k}={v}" for k, v in self._labels().items()]
        }
        # sparse: one call for every container, without inspecting each (exit codes come from poll)
        containers = self.client.containers.list(all=True, filters=filters, sparse=True)
        return [self._instance(c) for c in containers]

    # Helpers ------------------------------------------------------------------------------------

    def _reload(self, container: Container) -> Container:
        container.reload()
        return container

    def _instance(self, container: Container) -> Instance:
        """An instance from a full inspection or from a (sparse) listing: they differ in shape."""
        attrs: dict[str, Any] = container.attrs
        labels: dict[str, str] = attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {}
        state = attrs.get("State")
        details = state if isinstance(state, dict) else {}
        status = details.get("Status", "") if isinstance(state, dict) else str(state or "")
        port = labels.get(f"{LABEL}.port", "")
        exited = status in ("exited", "dead", "removing")
        return Instance(
            id=attrs.get("Id") or container.id or "",
            space_id=int(labels.get(f"{LABEL}.space", "0")),
            build_id=int(labels.get(f"{LABEL}.build", "0")),
            subdomain=labels.get(f"{LABEL}.subdomain", ""),
            state=_STATES.get(status, InstanceState.EXITED),
            upstream="" if exited else self._upstream(attrs, port),
            exit_code=details.get("ExitCode") if exited else None,
            oom_killed=bool(details.get("OOMKilled")) if exited else False,
            started_at=details.get("StartedAt", ""),
            labels=labels,
        )

    def _upstream(self, attrs: dict[str, Any], port: str) -> str:
        if not port:
            return ""
        settings = attrs.get("NetworkSettings") or {}
        if self._publishes:
            ports = settings.get("Ports") or attrs.get("Ports") or {}
            if isinstance(ports, list):  # a listing: [{"PrivatePort": 7860, "PublicPort": 32768, ...}]
                public = [
                    p["PublicPort"]
                    for p in ports
                    if str(p.get("PrivatePort")) == port and p.get("PublicPort")
                ]
            else:
                public = [b["HostPort"] for b in ports.get(f"{port}/tcp") or []]
            return f"{self.settings.advertise_address}:{public[0]}" if public else ""
        networks = settings.get("Networks") or {}
        address = (networks.get(self.network_name) or {}).get("IPAddress")
        return f"{address}:{port}" if address else ""


_STATES = {
    "running": InstanceState.RUNNING,
    "paused": InstanceState.FROZEN,
    "restarting": InstanceState.RESTARTING,
    "created": InstanceState.CREATED,
}


def _split_timestamp(line: str) -> tuple[str, str]:
    """Docker's `2026-11-22T19:00:00.123456789Z text` as (`2026-11-22T19:00:00.123Z`, `text`)."""
    match = _DOCKER_TIMESTAMP.match(line)
    if match is None:
        return "", line.rstrip("\r")
    return f"{match['seconds']}.{(match['fraction'] or '0').ljust(3, '0')[:3]}Z", match["text"].rstrip("\r")


@contextmanager
def _secret_files(secrets: dict[str, str]) -> Iterator[dict[str, Path]]:
    """Secrets as files readable by root only, for BuildKit's `--secret` (never a layer)."""
    with tempfile.TemporaryDirectory(prefix="spacehub-secrets-") as tmp:
        os.chmod(tmp, 0o700)
        files = {}
        for key, value in secrets.items():
            path = Path(tmp) / key
            path.write_text(value)
            path.chmod(0o600)
            files[key] = path
        yield files
