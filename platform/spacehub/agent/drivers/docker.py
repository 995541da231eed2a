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
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import DeviceRequest, LogConfig

from spacehub.agent.drivers.base import Instance, InstanceState, LaunchSpec, RuntimeDriver
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
from spacehub.build.runtimes import Runtimes
from spacehub.queue.flavors import parse_size
from spacehub.queue.spec import DeploySpec
from spacehub.signing import derive_key
from spacehub.spec.config import PreloadEntry
from spacehub.state.logs import LogWriter

if TYPE_CHECKING:
    from spacehub.agent.context import AgentContext

log = logging.getLogger(__name__)

LABEL = "spacehub"
BUILD_SECRETS_PURPOSE = b"spacehub build secrets digest v1"
_DOCKER_TIMESTAMP = re.compile(
    r"^(?P<seconds>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?Z ?(?P<text>.*)$", re.S
)


class DockerDriver(RuntimeDriver):
    def __init__(self, agent: AgentContext):
        self.agent = agent
        self.settings = agent.settings
        self.client = docker.from_env(timeout=300)
        self._cli: str | None = None
        self._runtimes: Runtimes | None = None

    @property
    def cli(self) -> str:
        if self._cli is None:
            self._cli = find_docker_cli(self.settings.docker_cli)
        return self._cli

    @property
    def runtimes(self) -> Runtimes:
        if self._runtimes is None:
            self._runtimes = Runtimes(self.settings, self.client, self.cli)
        return self._runtimes

    @property
    def network_name(self) -> str:
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
        return gateway_address(ensure_app_network(self.client, self.network_name))

    # Build --------------------------------------------------------------------------------------

    def image_tag(self, spec: DeploySpec) -> str:
        return f"spacehub/app-{self.agent.instance_id}-{spec.space_id}:b{spec.build_id}"

    def build(self, spec: DeploySpec, source: Path, log_writer: LogWriter) -> str:
        tag = self.image_tag(spec)
        with tempfile.TemporaryDirectory(prefix="spacehub-build-") as tmp:
            dockerfile = Path(tmp) / "Dockerfile"
            if spec.sdk == "docker":
                self.build_dockerfile(spec, source, dockerfile, tag, log_writer)
            else:
                self.build_sdk(spec, source, dockerfile, tag, log_writer)
        return tag

    def build_dockerfile(
        self, spec: DeploySpec, source: Path, dockerfile: Path, tag: str, log_writer: LogWriter
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
        self, spec: DeploySpec, source: Path, dockerfile: Path, tag: str, log_writer: LogWriter
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
        tag = self.image_tag(spec)
        return tag if self.runtimes.has_image(tag) else None

    def push_artifact(self, artifact: str, registry: str) -> None:
        remote = f"{registry.rstrip('/')}/{artifact}"
        repository, tag = remote.rsplit(":", 1)
        self.client.images.get(artifact).tag(repository, tag)
        for status in self.client.images.push(repository, tag, stream=True, decode=True):
            if "error" in status:
                raise BuildFailed(f"pushing to {registry} failed: {status['error']}")

    def pull_artifact(self, spec: DeploySpec, registry: str) -> str | None:
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
        for space_id, builds in self.app_images().items():
            wanted = keep.get(space_id, set())
            if wanted:
                older = [b for b in builds if b < max(wanted)]
                wanted = wanted | ({max(older)} if older else set())
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
        self.remove_container(launch.name)  # a leftover of an interrupted attempt
        flavor = launch.flavor
        cpus = min(flavor.cpu, float(os.cpu_count() or 1))
        device_requests = (
            [DeviceRequest(driver="nvidia", device_ids=list(launch.gpu_ids), capabilities=[["gpu"]])]
            if launch.gpu_ids and self.gpu_device_requests
            else []
        )
        container = self.client.containers.run(  # type: ignore[call-overload]  # stubs lack (address, None) ports
            launch.artifact,
            detach=True,
            name=launch.name,
            labels={
                **self._labels(),
                f"{LABEL}.space": str(launch.space_id),
                f"{LABEL}.build": str(launch.build_id),
                f"{LABEL}.subdomain": launch.subdomain,
                f"{LABEL}.port": str(launch.port),
                f"{LABEL}.flavor": launch.flavor.name,
                f"{LABEL}.gpus": ",".join(launch.gpu_ids),
            },
            environment=launch.env,
            user="1000:1000",
            network=self.network_name,
            nano_cpus=int(cpus * 1e9),
            mem_limit=flavor.memory_bytes,
            memswap_limit=flavor.memory_bytes,
            pids_limit=flavor.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,
            device_requests=device_requests,
            log_config=LogConfig(type="json-file", config={"max-size": "20m", "max-file": "2"}),
            ports={f"{launch.port}/tcp": (self.settings.advertise_address, None)}
            if self._publishes
            else None,
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
        try:
            container = self.client.containers.get(instance_id)
        except docker.errors.NotFound:
            return
        try:
            container.stop(timeout=int(timeout))
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            log.warning("stopping %s: %s", instance_id, exc)
        self.remove_container(instance_id)

    def remove_container(self, name_or_id: str) -> None:
        try:
            self.client.containers.get(name_or_id).remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # removal already in progress
                raise

    def poll(self, instance_id: str) -> Instance | None:
        try:
            return self._instance(self.client.containers.get(instance_id))
        except docker.errors.NotFound:
            return None

    def logs(
        self, instance_id: str, *, follow: bool, since: float | None = None, tail: int | None = None
    ) -> Iterator[tuple[str, str]]:
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

    def stats(self, instance_id: str) -> dict[str, float]:
        try:
            raw: dict[str, Any] = self.client.containers.get(instance_id).stats(stream=False)  # type: ignore[assignment]
        except (docker.errors.NotFound, ValueError):
            return {}  # gone, or going: the engine answers an empty body for a container being removed
        cpu, precpu = raw.get("cpu_stats", {}), raw.get("precpu_stats", {})
        cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - precpu.get("cpu_usage", {}).get(
            "total_usage", 0
        )
        system_delta = cpu.get("system_cpu_usage", 0) - precpu.get("system_cpu_usage", 0)
        online = cpu.get("online_cpus") or os.cpu_count() or 1
        memory = raw.get("memory_stats", {})
        cache = memory.get("stats", {}).get("inactive_file", memory.get("stats", {}).get("cache", 0))
        return {
            "cpu": (cpu_delta / system_delta) * online if system_delta > 0 else 0.0,
            "memory": float(memory.get("usage", 0) - cache),
        }

    def list(self) -> list[Instance]:
        filters: dict[str, str | list[str] | bool] = {
            "label": [f"{k}={v}" for k, v in self._labels().items()]
        }
        return [self._instance(c) for c in self.client.containers.list(all=True, filters=filters)]

    # Helpers ------------------------------------------------------------------------------------

    def _reload(self, container: Container) -> Container:
        container.reload()
        return container

    def _instance(self, container: Container) -> Instance:
        labels: dict[str, str] = container.labels
        attrs: dict[str, Any] = container.attrs
        state = attrs.get("State", {})
        status = state.get("Status", "")
        port = labels.get(f"{LABEL}.port", "")
        return Instance(
            id=container.id or "",
            space_id=int(labels.get(f"{LABEL}.space", "0")),
            build_id=int(labels.get(f"{LABEL}.build", "0")),
            subdomain=labels.get(f"{LABEL}.subdomain", ""),
            state=InstanceState.RUNNING
            if status in ("running", "restarting")
            else (InstanceState.CREATED if status == "created" else InstanceState.EXITED),
            upstream=self._upstream(attrs, port),
            exit_code=state.get("ExitCode") if status in ("exited", "dead") else None,
            started_at=state.get("StartedAt", ""),
            labels=labels,
        )

    def _upstream(self, attrs: dict[str, Any], port: str) -> str:
        if not port:
            return ""
        if self._publishes:
            bindings = (attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
            return f"{self.settings.advertise_address}:{bindings[0]['HostPort']}" if bindings else ""
        networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
        address = (networks.get(self.network_name) or {}).get("IPAddress")
        return f"{address}:{port}" if address else ""


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
