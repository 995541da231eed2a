"""Image builds through the docker CLI with BuildKit (secret mounts need it; docker-py's build
API is the classic builder). The output streams into the build log line by line."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from spacehub.build.errors import BuildFailed
from spacehub.build.logsink import LogSink

log = logging.getLogger(__name__)

ERROR_BLOCK = re.compile(r"^-{6}\n(.*?)^-{6}$", re.S | re.M)
STEP_ERROR = re.compile(r"^#(?P<step>\d+) ERROR: ")
STEP_OUTPUT = re.compile(r"^#\d+ \d+\.\d+ (?P<text>.*)$")
MAX_ERROR_CHARS = 4000


@lru_cache
def find_docker_cli(configured: str | None = None) -> str:
    """A docker CLI that can run BuildKit builds: one with the buildx plugin, or a pre-23 CLI,
    where DOCKER_BUILDKIT=1 still selects the engine's built-in BuildKit."""
    candidates = [configured] if configured else [shutil.which("docker"), "/usr/bin/docker"]
    for cli in filter(None, candidates):
        if not Path(cli).exists():
            continue
        version = _client_version(cli)
        if version is None:
            continue
        if version < (23,) or _has_buildx(cli):
            return cli
    raise RuntimeError(
        "no docker CLI able to run BuildKit builds: install Debian's docker.io (/usr/bin/docker) "
        "or the buildx plugin, or set SPACEHUB_DOCKER_CLI"
    )


def _client_version(cli: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [cli, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    numbers = re.findall(r"\d+", out.split("+")[0])
    return tuple(int(n) for n in numbers[:3]) if numbers else None


def _has_buildx(cli: str) -> bool:
    proc = subprocess.run([cli, "buildx", "version"], capture_output=True, timeout=20)
    return proc.returncode == 0


def build_image(
    cli: str,
    context: Path,
    tag: str,
    log_writer: LogSink,
    *,
    dockerfile: Path | None = None,
    build_args: dict[str, str] | None = None,
    secrets: dict[str, Path] | None = None,
    no_cache: bool = False,
    timeout: float | None = None,
) -> None:
    """`docker build` `context` into `tag`; raises BuildFailed with the failing step's output."""
    args = [cli, "build", "--progress=plain", "--tag", tag]
    if dockerfile is not None:
        args += ["--file", str(dockerfile)]
    if no_cache:
        args.append("--no-cache")
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    for key, path in (secrets or {}).items():
        args += ["--secret", f"id={key},src={path}"]
    args.append(str(context))
    env = {**os.environ, "DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain"}
    tail: list[str] = []
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            log_writer.write(line)
            tail.append(line)
            del tail[:-400]
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise BuildFailed(f"the build took longer than {timeout:.0f} seconds") from None
    finally:
        log_writer.flush()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise BuildFailed(failure_summary(tail))


def failure_summary(lines: list[str]) -> str:
    """What the developer needs from a failed build: the failing step and its last output lines.

    BuildKit's plain progress prefixes each step's lines with `#<n>` and ends a failed step with
    `#<n> ERROR: ...`; without such a line (a failure outside any step) the log's tail is all
    there is."""
    failed_step = None
    for line in reversed(lines):
        if match := STEP_ERROR.match(line):
            failed_step = match["step"]
            break
    if failed_step is None:
        blocks = ERROR_BLOCK.findall("\n".join(lines) + "\n")
        summary = blocks[-1].strip() if blocks and blocks[-1].strip().count("\n") else "\n".join(lines[-25:])
        return summary.strip()[-MAX_ERROR_CHARS:]
    prefix = f"#{failed_step} "
    title = next((line[len(prefix) :] for line in lines if line.startswith(prefix + "[")), "")
    output = [m["text"] for line in lines if line.startswith(prefix) and (m := STEP_OUTPUT.match(line))]
    error = next(
        line[len(prefix) + len("ERROR: ") :]
        for line in reversed(lines)
        if line.startswith(prefix + "ERROR: ")
    )
    summary = "\n".join(part for part in (title, *output[-30:], error) if part)
    return summary[-MAX_ERROR_CHARS:]
