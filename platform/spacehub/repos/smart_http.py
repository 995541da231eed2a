"""Git's smart HTTP protocol (what `git http-backend` does), streaming both ways.

https://git-scm.com/docs/http-protocol — the client first GETs `info/refs?service=...`, then POSTs
the request of the service, which git answers with `--stateless-rpc`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

from spacehub.repos.git import git_env

log = logging.getLogger(__name__)

SERVICES = ("git-upload-pack", "git-receive-pack")
CHUNK = 1 << 16


def pkt_line(text: str) -> bytes:
    """`text` as one pkt-line of git's protocol: its length, in four hex digits, then the data."""
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


# git's pre-receive hook, for every push: with SPACEHUB_PUSH_REFS set (a push by someone who may
# not write to the repository), each ref the push updates must be one of them, and none deleted.
PRE_RECEIVE = """#!/bin/sh
[ -z "${SPACEHUB_PUSH_REFS+set}" ] && exit 0
status=0
while read -r old new ref; do
  case " $SPACEHUB_PUSH_REFS " in
    *" $ref "*) case "$new" in *[!0]*) ;; *) echo "spacehub: $ref cannot be deleted"; status=1 ;; esac ;;
    *) echo "spacehub: you may push only to your open pull requests ($SPACEHUB_PUSH_REFS), not to $ref"
       status=1 ;;
  esac
done
exit $status
"""


def install_hooks(directory: Path) -> Path:
    """The hooks folder every push runs with (`core.hooksPath`), written if it is not yet there."""
    hook = directory / "pre-receive"
    if not hook.exists() or hook.read_text() != PRE_RECEIVE:
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f".pre-receive.{os.getpid()}"
        partial.write_text(PRE_RECEIVE)
        partial.chmod(0o755)
        partial.replace(hook)
    return directory


def _env(git_protocol: str | None, allowed_refs: tuple[str, ...] | None = None) -> dict[str, str]:
    env = git_env()
    if git_protocol:
        env["GIT_PROTOCOL"] = git_protocol
    if allowed_refs is not None:
        env["SPACEHUB_PUSH_REFS"] = " ".join(allowed_refs)
    return env


def _config_args(config: dict[str, str]) -> list[str]:
    args = []
    for key, value in config.items():
        args += ["-c", f"{key}={value}"]
    return args


async def advertise_refs(
    repo: Path, service: str, git_protocol: str | None, config: dict[str, str] | None = None
) -> bytes:
    """The body of `GET info/refs?service=...`."""
    command = service.removeprefix("git-")
    proc = await asyncio.create_subprocess_exec(
        "git",
        *_config_args(config or {}),
        command,
        "--stateless-rpc",
        "--advertise-refs",
        str(repo),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(git_protocol),
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"git {command} --advertise-refs failed: {err.decode(errors='replace')}")
    # Protocol v2 advertises capabilities itself; v0/v1 need the service announcement first.
    if service == "git-upload-pack" and git_protocol and "version=2" in git_protocol:
        return out
    return pkt_line(f"# service={service}\n") + b"0000" + out


async def run_service(
    repo: Path,
    service: str,
    body: AsyncIterator[bytes],
    *,
    gzipped: bool,
    git_protocol: str | None,
    config: dict[str, str] | None = None,
    allowed_refs: tuple[str, ...] | None = None,
) -> AsyncIterator[bytes]:
    """Run `service` on `repo` with the request `body` as input, yielding its output as it comes.

    The request is fed in a task of its own, so that a large push and git's progress output
    never wait on each other. With `allowed_refs`, a push may update only those refs."""
    command = service.removeprefix("git-")
    proc = await asyncio.create_subprocess_exec(
        "git",
        *_config_args(config or {}),
        command,
        "--stateless-rpc",
        str(repo),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(git_protocol, allowed_refs),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    feeder = asyncio.create_task(_feed(proc.stdin, body, gzipped))
    stderr = asyncio.create_task(proc.stderr.read())
    try:
        while chunk := await proc.stdout.read(CHUNK):
            yield chunk
        await feeder
        await proc.wait()
        if proc.returncode != 0:
            message = (await stderr).decode(errors="replace").strip()
            log.warning("git %s on %s exited with %s: %s", command, repo, proc.returncode, message)
    finally:
        for task in (feeder, stderr):
            if not task.done():
                task.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _feed(stdin: asyncio.StreamWriter, body: AsyncIterator[bytes], gzipped: bool) -> None:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    try:
        async for chunk in body:
            data = inflater.decompress(chunk) if inflater else chunk
            if data:
                stdin.write(data)
                await stdin.drain()
        if inflater:
            stdin.write(inflater.flush())
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # git stopped reading (it rejected the request); its output says why
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
