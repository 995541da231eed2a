from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.apps import gradio_files
from tests.utils.browser import CHROMIUM, CHROMIUM_ARGS
from tests.utils.platform import Platform


@pytest.fixture(scope="session")
def gradio_space(platform: Platform) -> str:
    """One Gradio space, RUNNING, shared by the tests that only use it."""
    space = platform.create_space("e2e-gradio")
    platform.push(space, gradio_files("v1"))
    platform.wait_stage(space, "RUNNING")
    return space


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
