"""Images shared through a registry (Debian's docker-registry): a space that moves to a host
without its image pulls it instead of building again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import docker
import httpx
import pytest
from gradio_client import Client

from tests.conftest import _start_platform
from tests.e2e.apps import gradio_files
from tests.utils.platform import Platform, free_port_pair
from tests.utils.waiting import wait_until


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (make setup-test installs it)")
    root = tmp_path_factory.mktemp("registry")
    port = free_port_pair()
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"http://{address}/v2/", trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=10, interval=0.1, what=f"the registry at {address} to answer /v2/")
    yield address
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str, registry: str
) -> Iterator[Platform]:
    yield from _start_platform(
        request,
        tmp_path_factory,
        redis_url,
        "registry",
        with_agent=False,
        extra_env={"SPACEHUB_REGISTRY": registry, "SPACEHUB_HOST_LOSS_GRACE": "3"},
    )


def test_a_moved_space_pulls_its_image(shared: Platform, registry: str, space_name: str) -> None:
    shared.start_agent("first", host_id=f"first-{shared.namespace}", flavors="cpu-basic")
    space = shared.create_space(space_name)
    shared.push(space, gradio_files("shared"))
    shared.wait_stage(space, "RUNNING")
    catalog = httpx.get(f"http://{registry}/v2/_catalog", trust_env=False).json()["repositories"]
    image = next(c for c in shared.containers(all=False)).attrs["Config"]["Image"]
    assert image.rsplit(":", 1)[0] in catalog

    shared.start_agent("second", host_id=f"second-{shared.namespace}", flavors="cpu-basic")
    first = shared.processes.pop("first")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    docker.from_env().images.remove(image, force=True)  # the second host does not have the image
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        moved = [
            c
            for c in shared.containers(all=False)
            if c.labels["spacehub.host"] == f"second-{shared.namespace}"
        ]
        if moved and shared.runtime(space)["stage"] == "RUNNING":
            break
        time.sleep(1)
    else:
        raise AssertionError(shared.runtime(space))
    assert Client(shared.app_url(space), verbose=False).predict("r", api_name="/echo") == "shared:r"
    second_log = (shared.data_dir / "logs" / "second.log").read_text()
    assert f"pulled {image}" in second_log
    assert "==> Building" not in shared.logs(space, "build").split("==> Build succeeded", 1)[1]
