"""Many mostly idle spaces on one host: capacity counted by requests, idle tiers (frozen, sleeping)
that visitors see only as wake time, eviction under memory pressure, and faults that are not the
app's (a pause, a kill from outside, an engine restart) repaired by the platform."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import httpx
import pytest
from gradio_client import Client

from spacehub.agent.drivers.cgroups import container_usage
from spacehub.queue.flavors import DEFAULT_IDLE_FOOTPRINT
from tests.conftest import _start_platform
from tests.e2e.apps import gradio_files
from tests.utils.docker_engine import restart_docker_engine
from tests.utils.platform import Platform
from tests.utils.waiting import wait_until

# cpu-basic freezes after 3 s without visitors; cpu-upgrade never does (so that the fault tests
# see only what they do themselves); `tiny` has a small memory limit; `cramped` is served by a
# host that declares room for two of its apps only.
FLAVORS = """
flavors:
  cpu-basic: {pretty_name: CPU basic, cpu: 2, memory: 16Gi, freeze_after: 3s}
  cpu-upgrade: {pretty_name: CPU upgrade, cpu: 2, memory: 16Gi}
  tiny: {pretty_name: Tiny, cpu: 1, memory: 256Mi}
  cramped: {pretty_name: Cramped, cpu: 1, memory: 1Gi, request: {cpu: 0.1, memory: 200Mi}}
"""

GRADIO_FOOTPRINT = DEFAULT_IDLE_FOOTPRINT["gradio"].memory_bytes
OOM_APP = """
import time

import gradio as gr

demo = gr.Interface(lambda text: text, "text", "text")
demo.launch(prevent_thread_lock=True)
print("loading a model too large for this hardware", flush=True)
time.sleep(3)
weights = b"x" * (600 * 1024 * 1024)
demo.block_thread()
"""


@pytest.fixture(scope="module")
def tiers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Platform]:
    flavors = tmp_path_factory.mktemp("flavors") / "flavors.yaml"
    flavors.write_text(FLAVORS)
    for platform in _start_platform(
        request,
        tmp_path_factory,
        redis_url,
        "tiers",
        with_agent=False,
        extra_env={"SPACEHUB_FLAVORS_FILE": str(flavors)},
    ):
        # As `make up` starts it: the host offers what it really has.
        platform.start_agent(
            "roomy",
            host_id=f"roomy-{platform.namespace}",
            flavors="cpu-basic,cpu-upgrade,tiny",
            declared_capacity=False,
        )
        platform.start_agent(
            "cramped",
            host_id=f"cramped-{platform.namespace}",
            flavors="cramped",
            declared_capacity=False,
            agent_memory="500Mi",
            agent_evict_after="0",
        )
        yield platform


@pytest.fixture(scope="module")
def idle_spaces(tiers: Platform) -> list[str]:
    """Four Gradio spaces on cpu-upgrade, running side by side on the roomy host."""
    spaces = [tiers.create_space(f"idle-{i}", hardware="cpu-upgrade") for i in range(4)]
    for index, space in enumerate(spaces):
        tiers.push(space, gradio_files(f"idle{index}"))
    for space in spaces:
        tiers.wait_stage(space, "RUNNING")
    return spaces


def echo(platform: Platform, space: str, text: str = "x") -> str:
    return str(Client(platform.app_url(space), verbose=False).predict(text, api_name="/echo"))


def run_log(platform: Platform, space: str) -> str:
    return platform.logs(space, "run", read_timeout=1.5)


def test_placement_counts_requests_not_limits(tiers: Platform, idle_spaces: list[str]) -> None:
    """With `make up` defaults, four spaces whose limits (16 GiB each) add up to more than the
    host has all run: placement counts their requests."""
    assert [echo(tiers, space) for space in idle_spaces] == [f"idle{i}:x" for i in range(4)]

    def roomy_host() -> dict | None:  # the host's heartbeat reports a new app's tier a poll later
        with tiers.client() as client:
            hosts = {h["host"]: h for h in client.get("/api/admin/hosts").json()}
        host = hosts[f"roomy-{tiers.namespace}"]
        mine = [a for a in host["allocations"] if a["space"] in idle_spaces]
        return host if len(mine) == 4 and all(a["tier"] for a in mine) else None

    roomy = wait_until(roomy_host, timeout=30, what="the host to report the four apps")
    apps = [a for a in roomy["allocations"] if a["space"] in idle_spaces]
    assert len(apps) == 4
    assert sum(a["memory_limit"] for a in apps) > roomy["memory"]  # limits overcommit the host
    assert roomy["used_memory"] <= roomy["memory"]  # requests do not
    for app in apps:
        assert app["tier"] == "serving"
        assert 0 < app["memory_used"] < app["memory_limit"]
        assert app["memory"] == max(GRADIO_FOOTPRINT, app["memory_used"])
    assert roomy["real_memory"] >= sum(a["memory_used"] for a in apps)
    assert roomy["memory_available"] > 0


def test_an_idle_space_freezes_and_a_visit_thaws_it(tiers: Platform, space_name: str) -> None:
    space = tiers.create_space(space_name)
    tiers.push(space, gradio_files("frozen"))
    tiers.wait_stage(space, "RUNNING")
    runtime = wait_until(
        lambda: (r := tiers.runtime(space))["tier"] == "frozen" and r,
        timeout=60,
        what="the idle space to freeze",
        last=lambda: tiers.runtime(space),
    )
    assert runtime["stage"] == "RUNNING"  # the Hub stage does not show the tier
    container = tiers.container(space)
    assert container.status == "paused"
    before = container_usage(container.id)
    assert before is not None
    time.sleep(2)  # a measurement window, not a wait: CPU time used over two seconds must be none
    after = container_usage(container.id)
    assert after is not None and after.cpu_seconds == before.cpu_seconds

    started = time.monotonic()
    response = httpx.get(tiers.app_url(space) + "/config", trust_env=False, timeout=30)
    thawed_in = time.monotonic() - started
    assert response.status_code == 200
    print(f"first answer from a frozen app in {thawed_in * 1000:.0f} ms")
    assert tiers.runtime(space)["tier"] == "serving"
    assert tiers.container(space).status == "running"
    assert echo(tiers, space) == "frozen:x"


def test_a_full_host_puts_its_least_recently_visited_space_to_sleep(tiers: Platform, space_name: str) -> None:
    first, second, third = (tiers.create_space(f"{space_name}-{i}", hardware="cramped") for i in range(3))
    for index, space in enumerate((first, second)):
        tiers.push(space, gradio_files(f"cramped{index}"))
        tiers.wait_stage(space, "RUNNING")
    assert echo(tiers, second) == "cramped1:x"  # the first is now the least recently visited

    tiers.push(third, gradio_files("cramped2"))
    tiers.wait_stage(third, "RUNNING")
    asleep = tiers.wait_stage(first, "SLEEPING", timeout=60)
    assert "make room" in asleep["message"]
    assert asleep["tier"] == "sleeping"
    assert tiers.runtime(second)["stage"] == "RUNNING"
    assert "to make room" in run_log(tiers, first)

    # A visit wakes it on its host, which puts another space to sleep to make room again.
    assert echo(tiers, first) == "cramped0:x"
    assert tiers.runtime(first)["stage"] == "RUNNING"
    stages = [tiers.runtime(space)["stage"] for space in (second, third)]
    assert sorted(stages) == ["RUNNING", "SLEEPING"]


def test_a_pause_from_outside_is_undone(tiers: Platform, idle_spaces: list[str]) -> None:
    space = idle_spaces[0]
    container = tiers.container(space)
    container.pause()
    wait_until(
        lambda: [c.status for c in tiers.live_containers(space)] == ["running"],
        timeout=30,
        what="the agent to thaw the app",
    )
    assert echo(tiers, space) == "idle0:x"
    assert tiers.runtime(space)["stage"] == "RUNNING"
    assert "Paused from outside the platform: thawed" in run_log(tiers, space)


def test_a_kill_from_outside_is_repaired(tiers: Platform, idle_spaces: list[str]) -> None:
    space = idle_spaces[1]
    killed = tiers.container(space)
    killed.kill()
    wait_until(
        lambda: (
            [c.status for c in tiers.live_containers(space)] == ["running"]
            and tiers.runtime(space)["tier"] == "serving"
        ),
        timeout=60,
        what="the agent to start the app again",
    )
    assert echo(tiers, space) == "idle1:x"
    runtime = tiers.runtime(space)
    assert runtime["stage"] == "RUNNING" and runtime["errorMessage"] is None
    assert "was stopped from outside the platform; starting it again" in run_log(tiers, space)


def test_a_container_removed_from_outside_is_replaced(tiers: Platform, idle_spaces: list[str]) -> None:
    space = idle_spaces[2]
    removed = tiers.container(space)
    removed.remove(force=True)
    wait_until(
        lambda: (
            [c.id for c in tiers.live_containers(space) if c.status == "running"] not in ([], [removed.id])
            and tiers.runtime(space)["stage"] == "RUNNING"
            and tiers.runtime(space)["tier"] == "serving"
        ),
        timeout=120,
        what="a new container for the space",
        last=lambda: tiers.runtime(space),
    )
    assert echo(tiers, space) == "idle2:x"


def test_an_app_killed_for_memory_says_so(tiers: Platform, space_name: str) -> None:
    space = tiers.create_space(space_name, hardware="tiny")
    tiers.push(space, {"README.md": "---\nsdk: gradio\n---\n", "app.py": OOM_APP})
    runtime = tiers.wait_stage(space, "RUNTIME_ERROR", timeout=300)
    assert "ran out of memory (limit 256Mi)" in runtime["errorMessage"]
    assert "3 times" in runtime["errorMessage"]
    assert "loading a model too large" in runtime["errorMessage"]
    assert run_log(tiers, space).count("ran out of memory (limit 256Mi); starting it again") == 2


def test_a_docker_engine_restart_leaves_every_space_running(tiers: Platform, idle_spaces: list[str]) -> None:
    before = {space: tiers.container(space).id for space in idle_spaces}
    restart_docker_engine()
    client = docker.from_env()
    for space in idle_spaces:
        wait_until(
            lambda space=space: (
                client.containers.get(before[space]).status == "running"
                and tiers.runtime(space)["tier"] == "serving"
                and tiers.info(space)["runtime"]["stage"] == "RUNNING"
            ),
            timeout=180,
            what=f"{space} to run again after the engine restart",
            last=lambda space=space: tiers.runtime(space),
        )
    assert [echo(tiers, space) for space in idle_spaces] == [f"idle{i}:x" for i in range(4)]
