"""Several hosts on one machine: placement by flavor and capacity (GPU device ids included),
waiting for hardware, host loss, sleep and wake, disk hygiene."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import docker
import httpx
import pytest
from gradio_client import Client
from huggingface_hub import HfApi, HfFileSystem, Volume

from tests.conftest import _start_platform
from tests.e2e.apps import GRADIO_README, gradio_files
from tests.utils.platform import Platform

GPU_APP = """
import os

import gradio as gr


def devices(_):
    return os.environ.get("NVIDIA_VISIBLE_DEVICES", "") + "|" + os.environ.get("ACCELERATOR", "")


gr.Interface(devices, "text", "text", api_name="devices").launch()
"""


@pytest.fixture(scope="module")
def hosts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Platform]:
    """Two hosts: `cpu` serves CPU flavors; `gpu` serves t4-small with two declared GPUs."""
    for platform in _start_platform(
        request,
        tmp_path_factory,
        redis_url,
        "hosts",
        with_agent=False,
        extra_env={"SPACEHUB_HYGIENE_INTERVAL": "3", "SPACEHUB_HOST_LOSS_GRACE": "3"},
    ):
        platform.start_agent("cpu", host_id=f"cpu-{platform.namespace}", flavors="cpu-basic,cpu-upgrade")
        platform.start_agent(
            "gpu",
            host_id=f"gpu-{platform.namespace}",
            flavors="t4-small",
            agent_gpus='["0", "1"]',
            agent_gpu_model="T4",
            gpu_mode="env",
        )
        yield platform


def container_of(platform: Platform, space: str):
    subdomain = platform.info(space)["subdomain"]
    running = [c for c in platform.containers(all=False) if c.labels.get("spacehub.subdomain") == subdomain]
    assert len(running) == 1, running
    return running[0]


def test_spaces_land_on_hosts_by_flavor_and_gpus_are_dedicated(hosts: Platform, space_name: str) -> None:
    api = HfApi(endpoint=hosts.url, token=hosts.admin_token)
    cpu_space = hosts.create_space(space_name + "-cpu")
    hosts.push(cpu_space, gradio_files("cpu"))
    first, second, third = (hosts.create_space(f"{space_name}-gpu{i}", hardware="t4-small") for i in range(3))
    for space in (first, second):
        hosts.push(space, {"README.md": "---\nsdk: gradio\n---\n", "app.py": GPU_APP})
        hosts.wait_stage(space, "RUNNING")
    hosts.wait_stage(cpu_space, "RUNNING")
    assert container_of(hosts, cpu_space).labels["spacehub.host"] == f"cpu-{hosts.namespace}"
    gpu_containers = [container_of(hosts, s) for s in (first, second)]
    assert {c.labels["spacehub.host"] for c in gpu_containers} == {f"gpu-{hosts.namespace}"}
    assert sorted(c.labels["spacehub.gpus"] for c in gpu_containers) == ["0", "1"]
    for space, container in zip((first, second), gpu_containers, strict=True):
        env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
        assert env["NVIDIA_VISIBLE_DEVICES"] == container.labels["spacehub.gpus"]
        answer = Client(hosts.app_url(space), verbose=False).predict("", api_name="/devices")
        assert answer == f"{container.labels['spacehub.gpus']}|t4-small"

    # Both GPUs are taken: the third GPU space waits, and says why.
    hosts.push(third, {"README.md": "---\nsdk: gradio\n---\n", "app.py": GPU_APP})
    deadline = time.monotonic() + 60
    runtime = hosts.runtime(third)
    while "Waiting for hardware" not in (runtime.get("message") or "") and time.monotonic() < deadline:
        time.sleep(1)
        runtime = hosts.runtime(third)
    assert runtime["stage"] == "BUILDING"
    assert "every host serving t4-small is full" in runtime["message"] and "2 of 2 GPUs" in runtime["message"]

    # A GPU frees: the waiting space starts by itself, on that GPU.
    freed = container_of(hosts, first).labels["spacehub.gpus"]
    api.pause_space(first)
    hosts.wait_stage(third, "RUNNING", timeout=300)
    assert container_of(hosts, third).labels["spacehub.gpus"] == freed

    with hosts.client() as client:
        listed = {h["host"]: h for h in client.get("/api/admin/hosts").json()}
    gpu_host = listed[f"gpu-{hosts.namespace}"]
    assert gpu_host["online"] and gpu_host["gpus"] == ["0", "1"] and gpu_host["gpu_model"] == "T4"
    assert sorted(gpu_host["used_gpus"]) == ["0", "1"]
    assert {a["space"] for a in gpu_host["allocations"]} == {second, third}
    assert listed[f"cpu-{hosts.namespace}"]["flavors"] == ["cpu-basic", "cpu-upgrade"]


def test_a_lost_host_is_replaced(hosts: Platform, space_name: str) -> None:
    space = hosts.create_space(space_name, hardware="cpu-upgrade")
    hosts.push(space, gradio_files("moved"))
    hosts.wait_stage(space, "RUNNING")
    old = container_of(hosts, space)
    assert old.labels["spacehub.host"] == f"cpu-{hosts.namespace}"
    hosts.start_agent("spare", host_id=f"spare-{hosts.namespace}", flavors="cpu-upgrade")

    agent = hosts.processes.pop("cpu")
    os.killpg(agent.pid, signal.SIGKILL)  # the whole host agent, its workers and work horses
    agent.wait()
    killed_at = time.monotonic()
    deadline = killed_at + 120
    while time.monotonic() < deadline:
        containers = [
            c
            for c in hosts.containers(all=False)
            if c.labels.get("spacehub.subdomain") == hosts.info(space)["subdomain"]
            and c.labels["spacehub.host"] == f"spare-{hosts.namespace}"
        ]
        if containers and hosts.runtime(space)["stage"] == "RUNNING":
            break
        time.sleep(1)
    else:
        raise AssertionError(f"not moved: {hosts.runtime(space)}")
    moved_in = time.monotonic() - killed_at
    assert Client(hosts.app_url(space), verbose=False).predict("x", api_name="/echo") == "moved:x"
    print(f"rescheduled after host loss in {moved_in:.1f} s")

    # The lost host comes back and removes the container it no longer owns.
    hosts.restart("cpu")
    deadline = time.monotonic() + 60
    client = docker.from_env()
    while time.monotonic() < deadline:
        try:
            client.containers.get(old.id)
        except docker.errors.NotFound:
            break
        time.sleep(1)
    else:
        raise AssertionError("the returning host kept a container it no longer owns")


def test_sleep_and_wake(hosts: Platform, space_name: str, browser, artifacts) -> None:
    api = HfApi(endpoint=hosts.url, token=hosts.admin_token)
    space = hosts.create_space(space_name)
    hosts.push(space, gradio_files("sleepy"))
    hosts.wait_stage(space, "RUNNING")
    container = hosts.container(space)
    api.set_space_sleep_time(space, 5)
    asleep = hosts.wait_stage(space, "SLEEPING", timeout=60)
    assert asleep["tier"] == "sleeping" and "without visitors" in asleep["message"]
    assert hosts.live_containers(space) == []  # stopped, and kept for a fast start
    container.reload()
    assert container.status == "exited"

    # An API client simply succeeds: the request is held while its host wakes the same container.
    assert Client(hosts.app_url(space), verbose=False).predict("hi", api_name="/echo") == "sleepy:hi"
    assert hosts.runtime(space)["stage"] == "RUNNING"
    assert hosts.container(space).id == container.id

    hosts.wait_stage(space, "SLEEPING", timeout=60)
    page = browser.new_page()
    page.goto(hosts.app_url(space), wait_until="domcontentloaded")
    page.get_by_text("This space is waking up").wait_for(timeout=10_000)
    page.screenshot(path=str(artifacts / "waking.png"))
    page.get_by_role("button", name="echo").wait_for(timeout=120_000)
    page.screenshot(path=str(artifacts / "woken.png"))
    page.close()
    api.set_space_sleep_time(space, -1)


def test_paused_spaces_do_not_wake(hosts: Platform, space_name: str) -> None:
    api = HfApi(endpoint=hosts.url, token=hosts.admin_token)
    space = hosts.create_space(space_name)
    hosts.push(space, gradio_files("paused"))
    hosts.wait_stage(space, "RUNNING")
    api.pause_space(space)
    response = httpx.get(hosts.app_url(space) + "/config", trust_env=False, timeout=30)
    assert response.status_code == 503 and response.json()["stage"] == "PAUSED"
    hosts.wait_for_reports_applied()  # a wake the visit asked for would have been applied by now
    assert hosts.runtime(space)["stage"] == "PAUSED"


def test_old_images_are_pruned(hosts: Platform, space_name: str) -> None:
    space = hosts.create_space(space_name)
    for version in ("one", "two", "three"):
        sha = hosts.push(space, gradio_files(version))
        assert hosts.wait_stage(space, "RUNNING")["sha"] == sha
    info = hosts.info(space)
    prefix = f"spacehub/app-{hosts.instance_id()}-{info['_id']}:"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tags = [t for image in docker.from_env().images.list() for t in image.tags if t.startswith(prefix)]
        if len(tags) <= 2:
            break
        time.sleep(1)
    assert len(tags) == 2, tags  # the running build and the one before it
    with hosts.client() as client:
        disk = {h["host"]: h["disk"] for h in client.get("/api/admin/hosts").json() if h["online"]}
    assert disk[f"cpu-{hosts.namespace}"]["images"] > 0


def replaced(hosts: Platform, space: str, old_id: str, sha: str | None = None) -> Any:
    """The space's one container once it replaced `old_id` and runs (commit `sha`, if given)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        live, runtime = hosts.live_containers(space), hosts.runtime(space)
        replaced_it = len(live) == 1 and live[0].id != old_id and runtime["stage"] == "RUNNING"
        if replaced_it and (sha is None or runtime["sha"] == sha):
            return live[0]
        time.sleep(1)
    raise AssertionError(f"no new container: {hosts.runtime(space)}")


VOLUME_APP = """
import os

import gradio as gr


def probe(_):
    path = "/data/counter"
    count = int(open(path).read()) + 1 if os.path.exists(path) else 1
    try:
        with open(path + ".new", "w") as handle:
            handle.write(str(count))
        os.replace(path + ".new", path)
    except OSError:
        return f"{count - 1}|bucket read-only"
    config = open("/models/config.json").read()
    try:
        open("/models/new.txt", "w").close()
        model = "writable"
    except OSError:
        model = "read-only"
    return f"{count}|{config}|{model}"


gr.Interface(probe, "text", "text", api_name="probe").launch()
"""


def test_a_bucket_volume_keeps_its_data_across_restart_rebuild_sleep_and_a_move(
    hosts: Platform, space_name: str
) -> None:
    """The counter lives in a bucket mounted at /data; a model's folder is mounted read-only."""
    api = HfApi(endpoint=hosts.url, token=hosts.admin_token)
    bucket = f"admin/{space_name}"
    api.create_bucket(bucket)
    model = api.create_repo(f"admin/m-{space_name}").repo_id
    api.upload_file(path_or_fileobj=b'{"m": 1}', path_in_repo="weights/config.json", repo_id=model)
    space = hosts.create_space(space_name)
    api.set_space_volumes(
        space,
        [
            Volume(type="bucket", source=bucket, mount_path="/data"),
            Volume(type="model", source=model, mount_path="/models", path="weights"),
        ],
    )
    hosts.push(space, {"README.md": GRADIO_README, "app.py": VOLUME_APP})
    hosts.wait_stage(space, "RUNNING")

    def probe() -> str:
        return Client(hosts.app_url(space), verbose=False).predict("", api_name="/probe")

    assert probe() == '1|{"m": 1}|read-only'
    first = hosts.container(space)
    assert first.labels["spacehub.host"] == f"cpu-{hosts.namespace}"

    api.restart_space(space)
    restarted = replaced(hosts, space, first.id)
    assert probe().startswith("2|")

    api.restart_space(space, factory_reboot=True)
    rebuilt = replaced(hosts, space, restarted.id)
    assert probe().startswith("3|")

    api.set_space_sleep_time(space, 5)
    hosts.wait_stage(space, "SLEEPING", timeout=60)
    assert probe().startswith("4|")  # woken by the request
    api.set_space_sleep_time(space, -1)
    assert hosts.container(space).id == rebuilt.id

    # A host of its own for the move: a flavor no other host of the module serves (two GPUs: a
    # restart starts the new container before the old one gives its GPU back).
    hosts.start_agent(
        "volumes",
        host_id=f"vol-{hosts.namespace}",
        flavors="a10g-small",
        agent_gpus='["0", "1"]',
        agent_gpu_model="A10G",
        gpu_mode="env",
    )
    api.request_space_hardware(space, "a10g-small")
    moved = replaced(hosts, space, rebuilt.id)
    assert moved.labels["spacehub.host"] == f"vol-{hosts.namespace}"
    assert probe() == '5|{"m": 1}|read-only'

    fs = HfFileSystem(endpoint=hosts.url, token=hosts.admin_token)
    assert fs.cat_file(f"hf://buckets/{bucket}/counter") == b"5"

    # Past its quota, the bucket is mounted read-only from the app's next start, and its log says why.
    with hosts.client() as admin:
        assert admin.put(f"/api/buckets/{bucket}/settings", json={"quota": 1}).status_code == 200
    api.restart_space(space)
    replaced(hosts, space, moved.id)
    assert probe() == "5|bucket read-only"
    assert "is full (its quota is 1 bytes): mounted read-only at /data" in hosts.logs(space, "run")


def test_a_gpu_space_on_a_full_host_takes_over_its_own_gpu(hosts: Platform, space_name: str) -> None:
    """A host with one GPU, used by the space itself: a restart and a new commit still start (the
    old version hands its GPU over), instead of waiting for a GPU that only it holds."""
    hosts.start_agent(
        "solo", host_id=f"solo-{hosts.namespace}", flavors="l4x1", agent_gpus='["0"]', gpu_mode="env"
    )
    api = HfApi(endpoint=hosts.url, token=hosts.admin_token)
    space = hosts.create_space(space_name, hardware="l4x1")
    hosts.push(space, gradio_files("one"))
    hosts.wait_stage(space, "RUNNING")

    first = hosts.container(space)
    api.restart_space(space)
    restarted = replaced(hosts, space, first.id)
    updated = replaced(hosts, space, restarted.id, hosts.push(space, gradio_files("two")))
    assert Client(hosts.app_url(space), verbose=False).predict("x", api_name="/echo") == "two:x"
    assert updated.labels["spacehub.gpus"] == "0"
    assert "goes to the new version" in hosts.logs(space, "run")
    hosts.stop_process("solo")
