"""Hosts on their own network: two agents, each in a network namespace of its own (a veth link and
a NAT route out, made here), running apps with the process driver. They reach Redis and the hub
only at this machine's addresses on their links, and the edge reaches their apps at the hosts'
addresses: builds, routes, logs, wake, host loss and moves work across them, with nothing reachable
at 127.0.0.1 by mistake. This is the README's "How to add a host", on one machine."""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
import redis
from gradio_client import Client

from tests.conftest import _start_platform
from tests.e2e.apps import gradio_files
from tests.utils.netns import Host, allow_forwarding, stop_forwarding
from tests.utils.platform import Platform
from tests.utils.waiting import wait_until

FLAVOR = "cpu-basic"


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[Host]]:
    prefix = "sh" + secrets.token_hex(3)
    made = [Host(index, prefix) for index in (1, 2)]
    try:
        for host in made:
            host.create()
        allow_forwarding()
        yield made
    finally:
        for host in made:
            host.remove()
        stop_forwarding()


@pytest.fixture(scope="module")
def lan_redis(hosts: list[Host], tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Redis for this platform on TCP, listening on this machine's end of each host's link."""
    port = free_port()
    directory = tmp_path_factory.mktemp("lan-redis")
    binds = ["127.0.0.1", *(host.gateway for host in hosts)]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", *binds, "--protected-mode", "no", "--save", ""],
        cwd=directory,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    wait_until(lambda: _pings(client), timeout=10, what="redis-server to answer")
    yield port
    server.kill()
    server.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="module")
def lan(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    hosts: list[Host],
    lan_redis: int,
) -> Iterator[Platform]:
    """The hub here (controller and edge listening where the hosts reach them), one agent per host."""
    platform_iter = _start_platform(
        request,
        tmp_path_factory,
        f"redis://127.0.0.1:{lan_redis}/0",
        "lan",
        with_agent=False,
        extra_env={
            "SPACEHUB_CONTROLLER_HOST": "0.0.0.0",
            "SPACEHUB_HOST_LOSS_GRACE": "3",
            "SPACEHUB_AGENT_DRIVER": "process",
        },
    )
    platform = next(platform_iter)
    try:
        for host in hosts:
            platform.start_agent(
                host.netns,
                host_id=host.netns,
                flavors=FLAVOR,
                netns=host.netns,
                redis_url=f"redis://{host.gateway}:{lan_redis}/0",
                hub_url=f"http://{host.gateway}:{platform.port + 1}",
                apps_hub_url=f"http://{host.gateway}:{platform.port}",
                advertise_address=host.address,
            )
        yield platform
    finally:
        next(platform_iter, None)


def route(platform: Platform, space: str) -> dict[str, str]:
    """The space's record in the route table."""
    client = redis.Redis.from_url(platform.redis_url, decode_responses=True)
    return client.hgetall(f"{platform.namespace}:space:{platform.info(space)['subdomain']}")


def serving_host(platform: Platform, space: str, hosts: list[Host]) -> Host:
    """The host whose address the space's route points at (never a loopback address)."""
    upstream = route(platform, space).get("upstream", "")
    found = [host for host in hosts if upstream.startswith(f"{host.address}:")]
    assert found, f"the route points at {upstream!r}, no host's address"
    return found[0]


def test_apps_on_hosts_of_their_own_build_serve_log_wake_and_move(lan: Platform, hosts: list[Host]) -> None:
    space = lan.create_space("lan-" + secrets.token_hex(3), hardware=FLAVOR)
    lan.push(space, gradio_files("lan"))
    lan.wait_stage(space, "RUNNING")
    first = serving_host(lan, space, hosts)
    assert Client(lan.app_url(space), verbose=False).predict("x", api_name="/echo") == "lan:x"
    assert "Running on" in lan.logs(space, "run")  # the app's own output, from the host's agent

    # A visit wakes a sleeping app on its host.
    with lan.client() as admin:
        assert admin.post(f"/api/spaces/{space}/sleeptime", json={"seconds": 5}).is_success
    lan.wait_stage(space, "SLEEPING", timeout=120)
    answer = httpx.get(f"{lan.app_url(space)}/config", timeout=120, trust_env=False)
    assert answer.status_code == 200
    assert serving_host(lan, space, hosts) == first
    with lan.client() as admin:
        assert admin.post(f"/api/spaces/{space}/sleeptime", json={"seconds": 3600}).is_success

    # An operator's move starts it on the other host, whose address the route then points at.
    with lan.client() as admin:
        assert admin.post(f"/api/admin/spaces/{space}/move").is_success
    wait_until(
        lambda: (
            route(lan, space)
            .get("upstream", "")
            .startswith(next(h for h in hosts if h != first).address + ":")
        ),
        timeout=300,
        what="the app to move to the other host",
        last=lambda: (lan.runtime(space), route(lan, space)),
    )
    second = serving_host(lan, space, hosts)
    assert Client(lan.app_url(space), verbose=False).predict("y", api_name="/echo") == "lan:y"

    # The host it runs on is lost (its agent killed, its link down): it starts on the first again.
    lan.stop_process(second.netns, sig=9)
    second.unplug()
    wait_until(
        lambda: (
            route(lan, space).get("upstream", "").startswith(first.address + ":")
            and lan.runtime(space)["stage"] == "RUNNING"
        ),
        timeout=300,
        what="the app to start again on the host that is left",
        last=lambda: (lan.runtime(space), route(lan, space)),
    )
    assert Client(lan.app_url(space), verbose=False).predict("z", api_name="/echo") == "lan:z"
