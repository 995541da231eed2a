"""The config check that runs on every push, before anything is queued: the README's
configuration, the app file, and the dependency lists that can be judged without building."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from spacehub.spec.config import ConfigError, SpaceConfig, load_space_config

DEFAULT_PORTS = {"gradio": 7860, "streamlit": 8501, "docker": 7860}
DEFAULT_APP_FILES = {
    "gradio": "app.py",
    "streamlit": "app.py",
    "static": "index.html",
    "docker": "Dockerfile",
}
# Debian package names (policy §5.6.1), optionally with =version: nothing a shell would interpret.
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?$")


class NoAppFile(Exception):
    """The app file the configuration names is not in the repository."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class AppSpec:
    """What to build and run for one commit of a space."""

    sdk: str
    app_file: str
    app_port: int | None
    sdk_version: str | None
    python_version: str | None
    startup_timeout: int | None
    config: SpaceConfig


def check_space(files: set[str], read_text: Callable[[str], str | None], default_sdk: str) -> AppSpec:
    """Validate one commit of a space; `files` lists its paths, `read_text` reads one of them.

    Raises ConfigError (stage CONFIG_ERROR) or NoAppFile (stage NO_APP_FILE)."""
    if not files:
        raise NoAppFile("the repository is empty: push an app (see the space page for how)")
    config = load_space_config(read_text("README.md") if "README.md" in files else None)
    sdk = config.sdk or default_sdk
    app_file = config.app_file or DEFAULT_APP_FILES[sdk]
    if sdk == "docker":
        app_file = "Dockerfile"
    if app_file not in files:
        hint = "a Dockerfile at the repository root" if sdk == "docker" else f"`app_file: {app_file}`"
        raise NoAppFile(f"{app_file} not found: a {sdk} space needs {hint}")
    if sdk == "static" and config.app_build_command:
        raise ConfigError("`app_build_command` is not supported: commit the built files instead")
    if "packages.txt" in files:
        check_packages(read_text("packages.txt") or "")
    return AppSpec(
        sdk=sdk,
        app_file=app_file,
        app_port=_app_port(sdk, config),
        sdk_version=config.sdk_version,
        python_version=config.python_version,
        startup_timeout=config.startup_timeout_seconds,
        config=config,
    )


def _app_port(sdk: str, config: SpaceConfig) -> int | None:
    if sdk == "static":
        return None
    if sdk == "docker":
        return config.app_port or DEFAULT_PORTS["docker"]
    return DEFAULT_PORTS[sdk]


def check_packages(text: str) -> list[str]:
    """Debian packages listed in packages.txt (one per line, `#` comments allowed)."""
    packages = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for name in line.split():
            if not _DEBIAN_PACKAGE.match(name):
                raise ConfigError(f"packages.txt line {number}: {name!r} is not a Debian package name")
            packages.append(name)
    return packages
