"""Durable copies of build logs: streamed live through Redis, kept on disk once the build ends."""

from __future__ import annotations

import json
from pathlib import Path

from spacehub.config import Settings
from spacehub.controller.context import ControllerContext
from spacehub.state.logs import FINISHED_BUILD_LOG_TTL, LogLine, LogWriter, read_all


def build_log_path(settings: Settings, build_id: int) -> Path:
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
    path = build_log_path(settings, build_id)
    if not path.exists():
        return None
    lines = []
    with path.open() as handle:
        for raw in handle:
            entry = json.loads(raw)
            lines.append(LogLine(timestamp=entry["t"], text=entry["l"]))
    return lines
