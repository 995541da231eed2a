"""Build and run logs as the hub serves them: build logs streamed live through Redis and kept on
disk once the build ends; run logs, a capped tail in Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio
from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.config import Settings
from spacehub.controller.context import ControllerContext
from spacehub.db.models import Build, Space
from spacehub.state.logs import FINISHED_BUILD_LOG_TTL, LogLine, LogWriter, read_all, read_stream


def build_log_path(settings: Settings, build_id: int) -> Path:
    """Where an ended build's log is kept on disk (JSON lines)."""
    return settings.logs_dir / "builds" / f"{build_id}.jsonl"


def close_build_log(ctx: ControllerContext, build_id: int, last_line: str | None = None) -> None:
    """End a build's log from the controller's side (a superseded or lost build)."""
    writer = LogWriter(ctx.redis, ctx.keys.build_log(build_id))
    if last_line:
        writer.write(last_line)
    writer.end()


def persist_build_log(ctx: ControllerContext, build_id: int) -> bool:
    """Copy an ended build log to disk and let the Redis copy expire; False if it has not ended."""
    key = ctx.keys.build_log(build_id)
    lines, ended = read_all(ctx.redis, key)
    if not ended:
        return False
    path = build_log_path(ctx.settings, build_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as handle:
        for line in lines:
            handle.write(json.dumps({"t": line.timestamp, "l": line.text}) + "\n")
    tmp.replace(path)
    ctx.redis.expire(key, FINISHED_BUILD_LOG_TTL)
    return True


def read_persisted(settings: Settings, build_id: int) -> list[LogLine] | None:
    """An ended build's log as kept on disk, or None if it was not persisted."""
    path = build_log_path(settings, build_id)
    if not path.exists():
        return None
    lines = []
    with path.open() as handle:
        for raw in handle:
            entry = json.loads(raw)
            lines.append(LogLine(timestamp=entry["t"], text=entry["l"]))
    return lines


def log_source(ctx: ControllerContext, session: Session, space: Space, kind: str) -> tuple[str, int | None]:
    """(Redis key to follow, build id) of a space's `build` or `run` log."""
    if kind == "run":
        return ctx.keys.run_log(space.repo_id), None
    build_id = space.current_build_id or session.scalar(
        select(Build.id).where(Build.space_id == space.repo_id).order_by(Build.id.desc()).limit(1)
    )
    return (ctx.keys.build_log(build_id) if build_id else ""), build_id


async def follow_log(
    ctx: ControllerContext, aredis: redis.asyncio.Redis, key: str, build_id: int | None, tail: int | None
) -> AsyncIterator[LogLine | None]:
    """A log from its start (or its last `tail` lines): a finished build's from disk; otherwise the
    Redis stream, followed as it grows (None: nothing new for a while, time for a keep-alive)."""
    if not key:
        return
    if build_id is not None:
        persisted = await asyncio.to_thread(read_persisted, ctx.settings, build_id)
        if persisted is not None:
            for line in persisted[-tail:] if tail else persisted:
                yield line
            return
    async for item in read_stream(aredis, key, follow=True, tail=tail):
        yield item
