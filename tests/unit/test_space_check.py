import pytest

from spacehub.spec.check import NoAppFile, check_packages, check_space
from spacehub.spec.config import ConfigError


def check(files: dict[str, str], default_sdk: str = "gradio"):
    return check_space(set(files), files.get, default_sdk)


def test_an_empty_repository_has_no_app_file() -> None:
    with pytest.raises(NoAppFile, match="empty"):
        check({})


def test_gradio_needs_its_app_file() -> None:
    with pytest.raises(NoAppFile, match=r"app\.py"):
        check({"README.md": "---\nsdk: gradio\n---\n", "main.py": ""})
    with pytest.raises(NoAppFile, match=r"main\.py"):
        check({"README.md": "---\nsdk: gradio\napp_file: main.py\n---\n", "app.py": ""})


def test_docker_needs_a_dockerfile_and_uses_app_port() -> None:
    with pytest.raises(NoAppFile, match="Dockerfile"):
        check({"README.md": "---\nsdk: docker\n---\n", "app.py": ""})
    spec = check({"README.md": "---\nsdk: docker\napp_port: 8080\n---\n", "Dockerfile": "FROM x"})
    assert (spec.sdk, spec.app_port) == ("docker", 8080)


def test_the_sdk_chosen_at_creation_applies_without_readme() -> None:
    spec = check({"app.py": "import streamlit"}, default_sdk="streamlit")
    assert (spec.sdk, spec.app_file, spec.app_port) == ("streamlit", "app.py", 8501)


def test_static_needs_index_and_cannot_build() -> None:
    assert check({"index.html": ""}, default_sdk="static").app_port is None
    with pytest.raises(ConfigError, match="app_build_command"):
        check({"README.md": "---\nsdk: static\napp_build_command: npm run build\n---\n", "index.html": ""})


def test_packages_are_debian_names() -> None:
    assert check_packages("# tools\nffmpeg\nlibsm6 libxext6\ncurl=7.88.1-10\n") == [
        "ffmpeg",
        "libsm6",
        "libxext6",
        "curl=7.88.1-10",
    ]
    with pytest.raises(ConfigError, match="line 2"):
        check_packages("ffmpeg\nfoo; rm -rf /\n")
