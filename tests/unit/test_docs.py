"""The documentation that users follow stays true to the code."""

import re
from pathlib import Path

import yaml

from spacehub.config import settings_reference

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"<!-- settings:start -->\n(.*)\n<!-- settings:end -->", readme, re.S)
    assert table is not None
    assert table.group(1) == settings_reference(), "run scripts/update-readme-settings.py"


def test_the_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:1500]
    assert "make up" in head and "make test" in head
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_compose_stack_has_every_process() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"redis", "controller", "proxy", "agent"}
    assert any("docker.sock" in volume for volume in services["agent"]["volumes"])
    assert not any(
        "docker.sock" in str(volume)
        for name in ("controller", "proxy")
        for volume in services[name].get("volumes", [])
    )
