"""The Docker driver's GPU path against the real engine: with device requests, a GPU space's ids
reach Docker as an NVIDIA device request (inspected on the container, which this GPU-less machine
cannot start); in `env` mode, no device request (the ids reach the app only through the
NVIDIA_VISIBLE_DEVICES that the agent's deploy sets). Either way the container's labels carry the
ids, for an agent that restarts."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from types import SimpleNamespace

import docker
import pytest

from spacehub.agent.drivers.base import LaunchSpec
from spacehub.agent.drivers.docker import DockerDriver
from spacehub.config import Settings
from spacehub.queue.flavors import load_flavors

IMAGE = "python:3.11-slim"  # what the suite's Dockerfile spaces build from


@pytest.mark.parametrize("mode", ["device-request", "env"])
def test_gpu_ids_reach_docker_as_the_mode_says(tmp_path: Path, mode: str) -> None:
    namespace = "gpu" + secrets.token_hex(3)
    settings = Settings(data_dir=tmp_path, namespace=namespace, gpu_mode=mode)
    driver = DockerDriver(SimpleNamespace(settings=settings, host_id="gpu-host", instance_id=namespace))  # type: ignore[arg-type]
    client = docker.from_env()
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.images.pull(IMAGE)
    network = client.networks.create(driver.network_name)
    launch = LaunchSpec(
        name=f"{namespace}-app",
        artifact=IMAGE,
        space_id=1,
        build_id=1,
        subdomain=f"{namespace}-app",
        port=8080,
        env={},
        flavor=load_flavors()["cpu-basic"],
        sdk="docker",
        memory_limit=256 * 1024 * 1024,
        cpu_limit=1.0,
        startup_timeout=10,
        gpu_ids=("0", "1"),
    )
    try:
        try:
            driver.start(launch)
        except docker.errors.APIError as exc:
            # Without the NVIDIA toolkit the engine refuses to start what asks for its driver.
            assert mode == "device-request" and "nvidia" in str(exc).lower(), exc
        host_config = client.api.inspect_container(launch.name)["HostConfig"]
        requests = host_config.get("DeviceRequests") or []
        if mode == "device-request":
            assert [(r["Driver"], r["DeviceIDs"], r["Capabilities"]) for r in requests] == [
                ("nvidia", ["0", "1"], [["gpu"]])
            ]
        else:
            assert requests == []
        # Either way the container carries its GPU ids, so that an agent that restarts counts them.
        assert [i.gpus for i in driver.list() if i.subdomain == launch.subdomain] == [["0", "1"]]
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(launch.name).remove(force=True)
        network.remove()
