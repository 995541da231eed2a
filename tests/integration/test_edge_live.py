"""The edge while routes change: open connections keep going, thousands of spaces converge, a
second replica serves the same apps, and WebSocket messages (not pings) count as visits."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

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
    keys = Keys(platform.namespace)
    routes = RouteTable(redis_client, keys)
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    subdomain = route_to(platform, redis_client, space, upstream)
    # A control space on the same edge: its messages show when the edge would have written a visit
    # of a ping's space, had the ping counted (the edge writes a space's visits at most every
    # WRITE_EVERY seconds, the same throttle for both).
    control = route_to(
        platform, redis_client, platform.create_space(space_name + "-c", hardware=QUEUED_FLAVOR), upstream
    )

    def last_visit(of: str) -> float:
        record = routes.get(of)
        assert record is not None
        return float(redis_client.zscore(keys.activity, str(record.id)) or 0.0)

    def open_socket(of: str) -> ClientConnection:
        return connect(f"ws://{of}.localhost:{platform.port}/ws", ping_interval=None)

    with open_socket(subdomain) as ws:
        ws.recv()
        wait_until(
            lambda: last_visit(subdomain) > 0, timeout=10, what="opening the socket to count as a visit"
        )
        opened = last_visit(subdomain)
        other = open_socket(control)  # opened after the space's first visit was written
        other.recv()
        wait_until(lambda: last_visit(control) > 0, timeout=10, what="the control's socket to count")

        def ping_until_the_control_moves() -> None:
            """Ping the space's socket, and send the control a message, until the edge writes a
            later visit of the control (each pong: the edge has seen the ping before it)."""
            before = last_visit(control)

            def moved() -> bool:
                assert ws.ping().wait(5), "no pong"
                other.send("visit")
                assert other.recv() == "echo:visit"
                return last_visit(control) > before

            wait_until(moved, timeout=15, what="the edge to write a later visit of the control")

        # The first write of the control comes WRITE_EVERY after its opening, so after the space's
        # own first write too: from then on a counted ping would be written. The second one comes
        # after the pings sent meanwhile have been handled.
        try:
            ping_until_the_control_moves()
            ping_until_the_control_moves()
        finally:
            other.close()
        assert last_visit(subdomain) == opened
        ws.send(json.dumps({"big": "x" * 200_000}))
        assert json.loads(ws.recv().removeprefix("echo:"))["big"] == "x" * 200_000
        wait_until(lambda: last_visit(subdomain) > opened, timeout=10, what="a message to count as a visit")
