"""Redis holds nothing durable: replaced by an empty server while spaces serve, freeze and wait
for hardware, everything it held (routes, tiers, hosts, queues, the report stream) is rebuilt from
the database and the agents, and no space fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import _start_platform
from tests.e2e.apps import DOCKER_FILES
from tests.utils.platform import Platform
from tests.utils.redis_server import RedisServer
from tests.utils.waiting import wait_until

# cpu-basic apps freeze after 2 s without visitors; cpu-upgrade ones never do; no host serves
# `later` until the test starts one.
FLAVORS = """
flavors:
  cpu-basic: {pretty_name: CPU basic, cpu: 1, memory: 1Gi, freeze_after: 2s}
  cpu-upgrade: {pretty_name: CPU upgrade, cpu: 1, memory: 1Gi}
  later: {pretty_name: Later, cpu: 1, memory: 1Gi}
"""
REBUILT_WITHIN = 30.0
FAILED_STAGES = {"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, own_redis: RedisServer
) -> Iterator[Platform]:
    flavors = tmp_path_factory.mktemp("flavors") / "flavors.yaml"
    flavors.write_text(FLAVORS)
    for platform in _start_platform(
        request,
        tmp_path_factory,
        own_redis.url,
        "redisloss",
        with_agent=False,
        # The controller's passes are slower than the agents' here (as by default): what an agent
        # sees of an empty Redis before the controller fills it again must not make it act.
        extra_env={"SPACEHUB_FLAVORS_FILE": str(flavors), "SPACEHUB_RECONCILE_INTERVAL": "10"},
    ):
        platform.start_agent("agent", host_id=f"host-{platform.namespace}", flavors="cpu-basic,cpu-upgrade")
        yield platform


def answers(platform: Platform, space: str) -> bool:
    """Whether the space's app answers a visitor through the edge."""
    try:
        response = httpx.get(platform.app_url(space) + "/ping", trust_env=False, timeout=10)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json().get("space") == space


def hosts(platform: Platform) -> list[str]:
    with platform.client() as client:
        return [host["host"] for host in client.get("/api/admin/hosts").json()]


def test_an_empty_redis_is_filled_again_from_the_database_and_the_agents(
    hub: Platform, own_redis: RedisServer
) -> None:
    serving = hub.create_space("serving", sdk="docker", hardware="cpu-upgrade")
    frozen = hub.create_space("frozen", sdk="docker", hardware="cpu-basic")
    waiting = hub.create_space("waiting", sdk="docker", hardware="later")
    for space in (serving, frozen, waiting):
        hub.push(space, DOCKER_FILES)
    for space in (serving, frozen):
        hub.wait_stage(space, "RUNNING", timeout=300)
    wait_until(
        lambda: hub.container(frozen).attrs["State"]["Paused"], timeout=60, what="the idle app to freeze"
    )
    wait_until(
        lambda: "Waiting for hardware" in (hub.runtime(waiting).get("message") or ""),
        timeout=30,
        what="the third space to wait for hardware",
    )

    containers = {space: hub.container(space).id for space in (serving, frozen)}
    own_redis.replace()

    wait_until(lambda: answers(hub, serving), timeout=REBUILT_WITHIN, what="the serving app to answer again")
    wait_until(lambda: answers(hub, frozen), timeout=REBUILT_WITHIN, what="the frozen app to wake and answer")
    wait_until(
        lambda: f"host-{hub.namespace}" in hosts(hub),
        timeout=REBUILT_WITHIN,
        what="the host to register again",
    )
    for space in (serving, frozen, waiting):
        assert hub.runtime(space)["stage"] not in FAILED_STAGES, hub.runtime(space)
    assert {space: hub.container(space).id for space in containers} == containers, "the same apps serve"

    # The build that waited in a queue Redis lost is queued again, and runs once a host can take it.
    hub.start_agent("later", host_id=f"later-{hub.namespace}", flavors="later")
    hub.wait_stage(waiting, "RUNNING", timeout=300)
    assert answers(hub, waiting)
