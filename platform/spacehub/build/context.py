"""Build contexts: a commit's files, and the Dockerfile its SDK's template makes of them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shlex
import tarfile
from pathlib import Path

import jinja2

from spacehub.build.errors import BuildFailed
from spacehub.spec.check import check_packages
from spacehub.spec.config import ConfigError, PreloadEntry

_SYNTAX_DIRECTIVE = re.compile(r"^#\s*syntax\s*=.*$", re.M | re.I)
# A FROM instruction, with its continuation lines.
_FROM = re.compile(r"^[ \t]*FROM\b(?:[^\n]*\\\n)*[^\n]*$", re.M | re.I)
SECRETS_DIGEST_ARG = "SPACEHUB_SECRETS_DIGEST"


def extract_archive(archive: Path, destination: Path) -> None:
    """Unpack a `git archive` tar; the data filter refuses links and paths leaving `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")


def render_sdk_dockerfile(
    templates_dir: Path,
    sdk: str,
    *,
    base_image: str,
    app_file: str,
    source: Path,
    preload: list[PreloadEntry] | None = None,
) -> str:
    """The Dockerfile of an SDK space, from `templates/<sdk>/Dockerfile`."""
    packages: list[str] = []
    if (source / "packages.txt").is_file():
        try:
            packages = check_packages((source / "packages.txt").read_text(errors="replace"))
        except ConfigError as exc:
            raise BuildFailed(exc.message) from exc
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(templates_dir / sdk), str(templates_dir)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["shell_json"] = lambda value: shlex.quote(json.dumps(value))
    return environment.get_template("Dockerfile").render(
        base_image=base_image,
        preload=[entry.model_dump() for entry in preload or []],
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


def keyed_by_secrets(dockerfile: str) -> str:
    """BuildKit leaves secret mounts out of its cache keys: a step that read a secret would be
    reused after the secret changed, and by any space with the same Dockerfile. An ARG declared in
    every stage puts a digest of the secrets (given as a build arg) into the key of each RUN step."""
    return _FROM.sub(lambda match: f"{match.group(0)}\nARG {SECRETS_DIGEST_ARG}", dockerfile)


def secrets_digest(key: bytes, secrets: dict[str, str]) -> str:
    """A keyed digest of secret values: it shows in the image's history, so it must not let anyone
    guess them."""
    return hmac.new(key, json.dumps(sorted(secrets.items())).encode(), hashlib.sha256).hexdigest()


# Requirements that mean "this space needs PyTorch": it builds on the torch runtime.
TORCH_USERS = frozenset(
    {
        "torch",
        "transformers",
        "diffusers",
        "accelerate",
        "sentence-transformers",
        "peft",
        "timm",
        "torchaudio",
    }
)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_names(text: str) -> set[str]:
    """Normalised project names in a requirements file (options, URLs and comments ignored)."""
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        if match := _REQUIREMENT_NAME.match(line):
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def needs_torch(source: Path) -> bool:
    """Whether requirements.txt names PyTorch or a library built on it (the app then builds on torch)."""
    requirements = source / "requirements.txt"
    if not requirements.is_file():
        return False
    return bool(requirement_names(requirements.read_text(errors="replace")) & TORCH_USERS)
