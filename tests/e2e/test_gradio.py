"""A Gradio space, pushed with git, built, run and used through the proxy with gradio_client."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import httpx
import redis
from gradio_client import Client

from tests.e2e.apps import gradio_files
from tests.utils.platform import Platform
from tests.utils.waiting import wait_until


def test_predict_and_stream_through_the_proxy(platform: Platform, gradio_space: str) -> None:
    client = Client(platform.app_url(gradio_space), verbose=False)
    assert client.predict("hello", api_name="/echo") == "v1:hello"
    job = client.submit("4", api_name="/count")
    streamed = list(job)
    assert streamed == ["tick 0", "tick 1", "tick 2", "tick 3"]
    assert job.result() == "tick 3"


def test_gradio_client_works_at_a_custom_domain(platform: Platform, gradio_space: str) -> None:
    domain = f"demo.{gradio_space.split('/')[1]}.localhost"  # *.localhost resolves here
    with platform.client() as client:
        client.put(f"/api/spaces/{gradio_space}/custom-domain", json={"domain": domain}).raise_for_status()
        try:
            assert Client(f"http://{domain}:{platform.port}", verbose=False).predict(
                "hi", api_name="/echo"
            ) == ("v1:hi")
        finally:
            client.delete(f"/api/spaces/{gradio_space}/custom-domain").raise_for_status()


def test_the_app_sees_the_platform_environment(platform: Platform, gradio_space: str) -> None:
    client = Client(platform.app_url(gradio_space), verbose=False)
    env = client.predict("", api_name="/env")
    owner, name = gradio_space.split("/")
    assert env["SPACE_ID"] == gradio_space
    assert (env["SPACE_AUTHOR_NAME"], env["SPACE_REPO_NAME"], env["SPACE_TITLE"]) == (
        owner,
        name,
        "E2E Gradio",
    )
    assert env["SPACE_HOST"] == platform.app_url(gradio_space).removeprefix("http://")
    assert (env["CPU_CORES"], env["MEMORY"], env["ACCELERATOR"]) == ("2", "16Gi", "none")
    assert env["uid"] == "1000"
    assert env["docker_socket"] == "False"
    # HF_ENDPOINT reaches the hub from inside the container (through the public port).
    assert client.predict("", api_name="/hub") == "200"


def test_the_app_cannot_reach_internal_services(platform: Platform, gradio_space: str, tmp_path) -> None:
    """Redis exposed on every interface (as for remote agents) and the controller's port are out of
    reach from the apps network; the public port is reachable."""
    port = _free_port()
    server = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "0.0.0.0",
            "--protected-mode",
            "no",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:

        def answers() -> bool:
            try:
                return bool(redis.Redis(port=port).ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=10, interval=0.1, what=f"the redis-server on port {port} to answer")
        client = Client(platform.app_url(gradio_space), verbose=False)
        assert client.predict(str(port), api_name="/probe") != "open"
        assert client.predict(str(platform.port + 1), api_name="/probe") != "open"
        assert client.predict(str(platform.port), api_name="/probe") == "open"
    finally:
        server.terminate()
        server.wait()


def test_run_logs_show_the_app_output(platform: Platform, gradio_space: str) -> None:
    run_log = platform.logs(gradio_space, "run")
    assert "===== Application Startup at" in run_log
    assert "Running on local URL" in run_log


def test_a_redeploy_serves_every_request(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name)
    platform.push(space, gradio_files("v1"))
    platform.wait_stage(space, "RUNNING")
    url = platform.app_url(space) + "/config"
    failures: list[str] = []
    versions: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(trust_env=False, timeout=5) as client:
            while not stop.is_set():
                try:
                    response = client.get(url)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        sha = platform.push(space, gradio_files("v2"))
        stages = set()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            runtime = platform.runtime(space)
            stages.add(runtime["stage"])
            if runtime["stage"] == "RUNNING" and runtime["sha"] == sha:
                break
            time.sleep(0.2)
        versions.append(Client(platform.app_url(space), verbose=False).predict("x", api_name="/echo"))
        # Visitors keep coming while the old container drains and goes.
        wait_until(lambda: platform.instances_of(space) == 1, timeout=60, what="the old app to retire")
    finally:
        stop.set()
        poller.join()
    assert failures == []
    assert "RUNNING_BUILDING" in stages
    assert versions == ["v2:x"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
