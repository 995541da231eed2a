from __future__ import annotations

import pytest

from tests.e2e.apps import gradio_files
from tests.utils.platform import Platform


@pytest.fixture(scope="session")
def gradio_space(platform: Platform) -> str:
    """One Gradio space, RUNNING, shared by the tests that only use it."""
    space = platform.create_space("e2e-gradio")
    platform.push(space, gradio_files("v1"))
    platform.wait_stage(space, "RUNNING")
    return space
