"""The edge while routes change: open connections keep going, thousands of spaces converge, a
second replica serves the same apps, and WebSocket messages (not pings) count as visits."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
import redis
from websockets.sync.client import connect

from spacehub.stages import Stage
from spacehub.state.keys import Keys
from spacehub.state.routes import RouteTable, SpaceFacts
from tests.integration.conftest import QUEUED_FLAVOR
from tests.integration.test_proxy import route_to
from tests.utils.platform import Platform
from tests.utils.upstream import Upstream
from tests.utils.waiting import wait_until


@pytest.fixture
def two_upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    first, second = Upstream().start(), Upstream().start()
    yield first, second
    first.stop()
    second.stop()


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def served_by(url: str) -> int | None:
    response = httpx.get(url + "/who", trust_env=False, timeout=5)
    return response.json()["served_by"] if response.status_code == 200 else None


def test_a_route_change_leaves_open_connections_alone(
    platform: Platform,
    redis_client: redis.Redis,
    space_name: str,
    two_upstreams: tuple[Upstream, Upstream],
) -> None:
    """A space moves to another address while a visitor holds a WebSocket and a stream open to
    the first one: new requests go to the new address at once, the open ones carry on to the end."""
    first, second = two_upstreams
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    subdomain = route_to(platform, redis_client, space, first)
    app = f"http://{subdomain}.localhost:{platform.port}"
    events: list[str] = []
    with (
        connect(app.replace("http://", "ws://") + "/ws") as ws,
        httpx.stream("GET", app + "/sse", trust_env=False, timeout=30) as stream,
    ):
        ws.recv()  # the hello
        lines = stream.iter_lines()
        events.append(next(line for line in lines if line))
        RouteTable(redis_client, Keys(platform.namespace)).add_route(
            subdomain, second.address, 2, "test-host"
        )
        wait_until(lambda: served_by(app) == second.port, timeout=10, what="the edge to follow the move")
        ws.send("still here")
        assert ws.recv() == "echo:still here"
        for _ in range(2):
            httpx.post(f"http://{first.address}/sse/next", trust_env=False).raise_for_status()
            events.append(next(line for line in lines if line))
    assert events == ["data: 0", "data: 1", "data: 2"]


def test_thousands_of_spaces_converge(
    platform: Platform, redis_client: redis.Redis, upstream: Upstream
) -> None:
    """2,000 spaces published at once all answer through an edge, and are gone once removed. (An
    edge of its own, on a route table no controller tends: the controller's reconciler removes
    the records of spaces its database does not have.)"""
    namespace = platform.namespace + "-bulk"
    routes = RouteTable(redis_client, Keys(namespace))
    port = free_port()
    platform.start_edge_replica("edge-bulk", port, namespace=namespace)
    subdomains = [f"bulk-{n}" for n in range(2000)]
    try:
        for number, subdomain in enumerate(subdomains):
            routes.publish_space(
                SpaceFacts(subdomain, number + 1, f"bulk/{number}", Stage.RUNNING, False, "docker")
            )
            routes.add_route(subdomain, upstream.address, 1, "test-host")
        for subdomain in subdomains[:: len(subdomains) // 20] + subdomains[-1:]:
            url = f"http://{subdomain}.localhost:{port}"
            wait_until(
                lambda url=url: served_by(url) == upstream.port,
                timeout=30,
                what=f"{url} to answer",
                last=lambda url=url: httpx.get(url + "/who", trust_env=False).text[:300],
            )
        for subdomain in subdomains:
            routes.remove_space(subdomain)
        gone = f"http://{subdomains[-1]}.localhost:{port}/who"
        wait_until(
            lambda: httpx.get(gone, trust_env=False).status_code == 404,
            timeout=30,
            what="removed spaces to go",
        )
    finally:
        platform.stop_process("edge-bulk")
        redis_client.delete(*[Keys(namespace).space(s) for s in subdomains], Keys(namespace).spaces)


def test_a_second_edge_replica_serves_the_same_apps(
    platform: Platform,
    redis_client: redis.Redis,
    space_name: str,
    two_upstreams: tuple[Upstream, Upstream],
) -> None:
    first, second = two_upstreams
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    subdomain = route_to(platform, redis_client, space, first)
    replica_port = free_port()
    platform.start_edge_replica("edge-2", replica_port)
    try:
        apps = [f"http://{subdomain}.localhost:{port}" for port in (platform.port, replica_port)]
        wait_until(lambda: all(served_by(app) == first.port for app in apps), timeout=10, what="both edges")
        RouteTable(redis_client, Keys(platform.namespace)).add_route(
            subdomain, second.address, 2, "test-host"
        )
        wait_until(
            lambda: all(served_by(app) == second.port for app in apps), timeout=10, what="both to follow"
        )
        hub = httpx.get(f"http://127.0.0.1:{replica_port}/api/spaces/{space}", trust_env=False)
        assert hub.status_code == 200 and hub.json()["id"] == space
    finally:
        platform.stop_process("edge-2")


def test_websocket_messages_count_as_visits_and_pings_do_not(
    platform: Platform, redis_client: redis.Redis, space_name: str, upstream: Upstream
) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    subdomain = route_to(platform, redis_client, space, upstream)
    keys = Keys(platform.namespace)
    record = RouteTable(redis_client, keys).get(subdomain)
    assert record is not None
    member = str(record.id)

    def last_visit() -> float:
        return float(redis_client.zscore(keys.activity, member) or 0.0)

    with connect(f"ws://{subdomain}.localhost:{platform.port}/ws", ping_interval=None) as ws:
        ws.recv()
        wait_until(lambda: last_visit() > 0, timeout=10, what="opening the socket to count as a visit")
        opened = last_visit()
        deadline = time.monotonic() + 4.5  # longer than the edge's write interval, twice
        while time.monotonic() < deadline:
            ws.ping().wait(5)
            time.sleep(0.2)
        assert last_visit() == opened
        ws.send(json.dumps({"big": "x" * 200_000}))
        assert json.loads(ws.recv().removeprefix("echo:"))["big"] == "x" * 200_000
        wait_until(lambda: last_visit() > opened, timeout=10, what="a message to count as a visit")
