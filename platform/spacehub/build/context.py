"""Build contexts: a commit's files, and the Dockerfile its SDK's template makes of them."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import jinja2

from spacehub.build.errors import BuildFailed
from spacehub.spec.check import check_packages
from spacehub.spec.config import ConfigError

_SYNTAX_DIRECTIVE = re.compile(r"^#\s*syntax\s*=.*$", re.M | re.I)


def extract_archive(archive: Path, destination: Path) -> None:
    """Unpack a `git archive` tar; the data filter refuses links and paths leaving `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")


def render_sdk_dockerfile(
    templates_dir: Path, sdk: str, *, base_image: str, app_file: str, source: Path
) -> str:
    """The Dockerfile of an SDK space, from `templates/<sdk>/Dockerfile`."""
    packages: list[str] = []
    if (source / "packages.txt").is_file():
        try:
            packages = check_packages((source / "packages.txt").read_text(errors="replace"))
        except ConfigError as exc:
            raise BuildFailed(exc.message) from exc
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir / sdk)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("Dockerfile").render(
        base_image=base_image,
        app_file=app_file,
        packages=packages,
        has_requirements=(source / "requirements.txt").is_file(),
        has_pre_requirements=(source / "pre-requirements.txt").is_file(),
    )


def without_syntax_directive(dockerfile: str) -> tuple[str, bool]:
    """A `# syntax=` line makes BuildKit pull a frontend image; without a registry, the built-in
    frontend must do. Returns the Dockerfile and whether the line was dropped."""
    head, _, rest = dockerfile.partition("\n")
    if _SYNTAX_DIRECTIVE.match(head.strip()):
        return rest, True
    return dockerfile, False
