"""Build and run logs over SSE in the Hub's format, read by the real huggingface_hub client."""

from __future__ import annotations

import json
import threading
import time

import httpx
import redis
from huggingface_hub import HfApi

from spacehub.state.logs import LogWriter
from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.platform import Platform

APP = {"README.md": "---\nsdk: gradio\n---\n", "app.py": "import gradio\n"}


def current_build(platform: Platform, client: redis.Redis, space: str) -> int:
    subdomain = platform.info(space)["subdomain"]
    return int(client.hget(f"{platform.namespace}:space:{subdomain}", "current_build"))


def test_build_logs_replay_then_follow_until_the_build_ends(
    platform: Platform, space_name: str, redis_client: redis.Redis
) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, APP)
    writer = LogWriter(
        redis_client, f"{platform.namespace}:log:build:{current_build(platform, redis_client, space)}"
    )
    writer.write("step 1")
    writer.flush()

    received: list[dict[str, str]] = []
    done = threading.Event()

    def read() -> None:
        with httpx.stream(
            "GET",
            f"{platform.url}/api/spaces/{space}/logs/build",
            trust_env=False,
            headers={"Authorization": f"Bearer {platform.admin_token}"},
            timeout=httpx.Timeout(10, read=30),
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    received.append(json.loads(line[6:]))
        done.set()

    thread = threading.Thread(target=read)
    thread.start()
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["data"] for e in received] == ["step 1\n"]
    writer.write("step 2")
    writer.flush()
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received[-1]["data"] == "step 2\n"
    assert received[-1]["timestamp"].endswith("Z")
    writer.end()
    assert done.wait(10), "the stream did not end with the build"
    thread.join()


def test_huggingface_hub_reads_the_logs(
    platform: Platform, space_name: str, redis_client: redis.Redis
) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, APP)
    writer = LogWriter(
        redis_client, f"{platform.namespace}:log:build:{current_build(platform, redis_client, space)}"
    )
    for number in range(3):
        writer.write(f"line {number}")
    writer.flush()
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    lines = list(api.fetch_space_logs(space, build=True))
    assert lines == ["line 0\n", "line 1\n", "line 2\n"]


def test_run_logs_of_a_space_without_runs_are_empty(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    assert platform.logs(space, "run", read_timeout=1) == ""


def test_logs_of_a_private_space_are_private(platform: Platform, space_name: str, make_user) -> None:
    space = platform.create_space(space_name, private=True, hardware=QUEUED_FLAVOR)
    response = httpx.get(
        f"{platform.url}/api/spaces/{space}/logs/build",
        trust_env=False,
        headers={"Authorization": f"Bearer {make_user().token}"},
    )
    assert response.status_code == 404
    assert response.headers["x-error-code"] == "RepoNotFound"
