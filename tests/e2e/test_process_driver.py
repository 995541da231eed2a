"""The process driver (apps in virtualenvs as subprocesses, for hosts without Docker), put through
the same scenarios as the Docker driver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import _start_platform
from tests.e2e import test_failures, test_gradio, test_sdks
from tests.e2e.apps import gradio_files
from tests.utils.platform import Platform


@pytest.fixture(scope="module")
def process_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Platform]:
    yield from _start_platform(
        request, tmp_path_factory, redis_url, "process", extra_env={"SPACEHUB_AGENT_DRIVER": "process"}
    )


@pytest.fixture(scope="module")
def process_gradio_space(process_platform: Platform) -> str:
    space = process_platform.create_space("process-gradio")
    process_platform.push(space, gradio_files("v1"))
    process_platform.wait_stage(space, "RUNNING")
    return space


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
    test_failures.test_a_crash_after_start_is_a_runtime_error(process_platform, space_name)


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
