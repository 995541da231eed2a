"""Two controllers on one database, one repository store and one Redis, behind one edge: one of
them leads (reconciles, applies reports); SIGKILL either and the hub keeps answering, the other
taking the lead within a lease."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator

import httpx
import pytest
import redis

from spacehub.state.events import CONSUMER_GROUP, Event, EventType
from tests.conftest import _start_platform
from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.platform import Platform, free_port_pair
from tests.utils.waiting import wait_until

LEASE_SECONDS = 3.0


@pytest.fixture
def two_controllers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Platform]:
    second_port = free_port_pair()
    platform_port = free_port_pair()
    urls = [f"http://127.0.0.1:{platform_port + 1}", f"http://127.0.0.1:{second_port}"]
    for platform in _start_platform(
        request,
        tmp_path_factory,
        redis_url,
        "twocontrollers",
        port=platform_port,
        with_agent=False,
        extra_env={
            "SPACEHUB_CONTROLLER_URLS": json.dumps(urls),
            "SPACEHUB_LEADER_LEASE_SECONDS": str(LEASE_SECONDS),
        },
    ):
        platform.start_controller_replica("controller-2", second_port)
        yield platform


def leader_pid(platform: Platform) -> int | None:
    """The pid of the controller that holds the lease (its holder names host:pid:random)."""
    holder = redis.Redis.from_url(platform.redis_url).get(f"{platform.namespace}:lease:controller")
    return int(holder.decode().split(":")[1]) if holder else None


class Visitor(threading.Thread):
    """Asks the edge for the space listing and a space's runtime until stopped; counts failures."""

    def __init__(self, platform: Platform, space_id: str):
        super().__init__(daemon=True)
        self.platform, self.space_id = platform, space_id
        self.stopped = threading.Event()
        self.answered, self.failures = 0, []  # type: ignore[var-annotated]

    def run(self) -> None:
        with self.platform.client() as client:
            while not self.stopped.is_set():
                for path in ("/api/spaces", f"/api/spaces/{self.space_id}/runtime"):
                    try:
                        response = client.get(path)
                    except httpx.HTTPError as exc:
                        self.failures.append(repr(exc))
                        continue
                    if response.status_code == 200:
                        self.answered += 1
                    else:
                        self.failures.append(f"{path}: {response.status_code} {response.text[:200]}")


@pytest.mark.parametrize("victim", ["leader", "follower"])
def test_the_hub_survives_either_controller_killed(two_controllers: Platform, victim: str) -> None:
    platform = two_controllers
    pids = {key: platform.processes[key].pid for key in ("controller", "controller-2")}
    leader = wait_until(lambda: leader_pid(platform), timeout=15, what="a controller to lead")
    assert leader in pids.values()
    space_id = platform.create_space("watched", hardware=QUEUED_FLAVOR)

    visitor = Visitor(platform, space_id)
    visitor.start()
    wait_until(lambda: visitor.answered >= 10, timeout=30, what="the edge to answer")
    leader = leader_pid(platform)
    key = next(k for k, pid in pids.items() if (pid == leader) == (victim == "leader"))
    survivor = next(pid for k, pid in pids.items() if k != key)
    connection = redis.Redis.from_url(platform.redis_url)
    stream = f"{platform.namespace}:events"
    if victim == "leader":
        # A report the leader had read and not applied when it died, under another consumer name
        # (as an older release named it): the next leader must adopt it. The leader is stopped
        # first; a read it had waiting in Redis may still take the report, which is then moved.
        os.killpg(pids[key], signal.SIGSTOP)
        entry = connection.xadd(stream, Event(EventType.WAKE_REQUESTED, space_id=0, build_id=0).to_fields())
        connection.xreadgroup(CONSUMER_GROUP, "controller-old", {stream: ">"}, count=10)
        connection.xclaim(stream, CONSUMER_GROUP, "controller-old", 0, [entry])
        pending = connection.xpending_range(stream, CONSUMER_GROUP, min=entry, max=entry, count=1)
        assert [p["consumer"] for p in pending] == [b"controller-old"], "the report was applied already"
    platform.stop_process(key, signal.SIGKILL)
    wait_until(
        lambda: leader_pid(platform) == survivor, timeout=LEASE_SECONDS * 5, what="the survivor to lead"
    )
    platform.wait_for_reports_applied(timeout=15)

    # The survivor's reconciler runs: a lost route record comes back.
    subdomain = platform.info(space_id)["subdomain"]
    connection.delete(f"{platform.namespace}:space:{subdomain}")
    wait_until(
        lambda: connection.exists(f"{platform.namespace}:space:{subdomain}"),
        timeout=15,
        what="the reconciler to publish the space's record again",
    )
    # Writes go through too.
    platform.create_space("after-the-kill")
    answered = visitor.answered
    wait_until(lambda: visitor.answered >= answered + 10, timeout=15, what="the edge to keep answering")
    visitor.stopped.set()
    visitor.join(timeout=10)
    assert visitor.failures == [], visitor.failures[:5]
