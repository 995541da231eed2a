"""The process driver (apps in virtualenvs as subprocesses, for hosts without Docker), put through
the same scenarios as the Docker driver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from tests.conftest import _start_platform
from tests.e2e import test_failures, test_gradio, test_sdks
from tests.e2e.apps import gradio_files
from tests.utils.platform import Platform
from tests.utils.waiting import wait_until


@pytest.fixture(scope="module")
def process_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Platform]:
    flavors = tmp_path_factory.mktemp("flavors") / "flavors.yaml"
    flavors.write_text(
        "flavors:\n"
        "  cpu-basic: {pretty_name: CPU basic, cpu: 2, memory: 16Gi}\n"
        "  cpu-upgrade: {pretty_name: CPU upgrade, cpu: 2, memory: 16Gi, freeze_after: 3s}\n"
    )
    yield from _start_platform(
        request,
        tmp_path_factory,
        redis_url,
        "process",
        agent_flavors="cpu-basic,cpu-upgrade",
        extra_env={"SPACEHUB_AGENT_DRIVER": "process", "SPACEHUB_FLAVORS_FILE": str(flavors)},
    )


@pytest.fixture(scope="module")
def process_gradio_space(process_platform: Platform) -> str:
    space = process_platform.create_space("process-gradio")
    process_platform.push(space, gradio_files("v1"))
    process_platform.wait_stage(space, "RUNNING")
    return space


@pytest.fixture(scope="module")
def gradio_env(process_platform: Platform, process_gradio_space: str) -> dict:
    return dict(
        Client(process_platform.app_url(process_gradio_space), verbose=False).predict("", api_name="/env")
    )


def test_predict_and_stream(process_platform: Platform, process_gradio_space: str) -> None:
    test_gradio.test_predict_and_stream_through_the_proxy(process_platform, process_gradio_space)


def test_run_logs(process_platform: Platform, process_gradio_space: str) -> None:
    test_gradio.test_run_logs_show_the_app_output(process_platform, process_gradio_space)


def test_redeploy_without_downtime(process_platform: Platform, space_name: str) -> None:
    test_gradio.test_a_redeploy_serves_every_request(process_platform, space_name)


def test_build_error(process_platform: Platform, space_name: str) -> None:
    test_failures.test_a_missing_requirement_is_a_build_error_with_pip_output(process_platform, space_name)


def test_import_error(process_platform: Platform, space_name: str) -> None:
    test_failures.test_an_app_raising_at_import_is_a_runtime_error_with_the_traceback(
        process_platform, space_name
    )


def test_crash_after_start(process_platform: Platform, space_name: str) -> None:
    test_failures.test_a_crash_after_start_is_restarted(process_platform, space_name)


def test_crash_loop(process_platform: Platform, space_name: str) -> None:
    test_failures.test_a_crash_loop_is_a_runtime_error(process_platform, space_name)


def test_an_idle_app_is_stopped_with_sigstop(process_platform: Platform, space_name: str) -> None:
    space = process_platform.create_space(space_name, hardware="cpu-upgrade")
    process_platform.push(space, gradio_files("stopped"))
    process_platform.wait_stage(space, "RUNNING")
    wait_until(lambda: process_platform.runtime(space)["tier"] == "frozen", timeout=60, what="a freeze")
    pid = app_pid(process_platform, space)
    assert process_state(pid) == "T"  # stopped by SIGSTOP
    response = httpx.get(process_platform.app_url(space) + "/config", trust_env=False, timeout=30)
    assert response.status_code == 200
    assert process_state(pid) in ("S", "R")
    assert process_platform.runtime(space)["tier"] == "serving"


def test_apps_see_none_of_the_agents_environment(process_platform: Platform, gradio_env: dict) -> None:
    """The agent's environment holds the platform's secrets; an app gets what the Docker driver
    would give it."""
    assert not [key for key in gradio_env["all"] if key.startswith("SPACEHUB_")]
    assert gradio_env["SPACE_ID"].endswith("/process-gradio")


def app_pid(platform: Platform, space: str) -> int:
    subdomain = platform.info(space)["subdomain"]
    states = [json.loads(p.read_text()) for p in platform.data_dir.glob("agent/process/*/instances/*.json")]
    [state] = [s for s in states if s["subdomain"] == subdomain]
    return int(state["pid"])


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_streamlit_in_chromium(process_platform: Platform, space_name: str, browser, artifacts) -> None:
    test_sdks.test_streamlit_works_in_chromium_through_the_proxy(
        process_platform, space_name, browser, artifacts
    )


def test_dockerfile_apps_need_docker(process_platform: Platform, space_name: str) -> None:
    from tests.e2e.apps import DOCKER_FILES

    space = process_platform.create_space(space_name, sdk="docker")
    process_platform.push(space, DOCKER_FILES)
    runtime = process_platform.wait_stage(space, "BUILD_ERROR")
    assert "needs a host with the Docker driver" in runtime["errorMessage"]
