"""Agents' reports (state/events.py) applied to the database: one small handler per report, and the
loop that consumes them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from sqlalchemy.orm import Session

from spacehub.controller.context import ControllerContext
from spacehub.controller.logs import persist_build_log
from spacehub.controller.spaces import (
    clear_live,
    fail_build,
    progress_stage,
    publish,
    set_stage,
    start_again,
    wake,
)
from spacehub.db.models import Build, BuildStatus, Space, utcnow
from spacehub.stages import Stage
from spacehub.state.events import Event, EventType

log = logging.getLogger(__name__)

CONSUMER = "controller"  # one name for whichever controller leads, so that it finds what its
# predecessor read and never applied

Handler = Callable[[ControllerContext, Session, Space, Build, Event], None]


def on_build_started(
    ctx: ControllerContext, session: Session, space: Space, build: Build, event: Event
) -> None:
    """An agent took the job and builds."""
    if build.status == BuildStatus.QUEUED:
        build.status = BuildStatus.BUILDING
    build.started_at, build.host_id = utcnow(), event.host
    if space.current_build_id == build.id:
        set_stage(ctx, space, progress_stage(space, BuildStatus.BUILDING), f"Building on {event.host}")


def on_build_failed(
    ctx: ControllerContext, session: Session, space: Space, build: Build, event: Event
) -> None:
    """The build failed for a reason of the space's (its log says which)."""
    persist_build_log(ctx, build.id)
    if build.status.is_active:
        fail_build(ctx, space, build, Stage.BUILD_ERROR, event.message)


def on_app_starting(
    ctx: ControllerContext, session: Session, space: Space, build: Build, event: Event
) -> None:
    """The image is ready; the app starts."""
    persist_build_log(ctx, build.id)
    build.image = event.image
    if build.status.is_active:
        build.status = BuildStatus.STARTING
    if space.current_build_id == build.id:
        set_stage(ctx, space, progress_stage(space, BuildStatus.STARTING), "Starting the app")


def on_app_running(
    ctx: ControllerContext, session: Session, space: Space, build: Build, event: Event
) -> None:
    """The app answers (after a deploy, a wake or a restart); a late report of an older build is
    still recorded as what serves, since its container does, unless a newer one already serves."""
    persist_build_log(ctx, build.id)
    if build.status.is_active:
        build.status = BuildStatus.SUCCEEDED
        build.finished_at = utcnow()
    if space.live_build_id is not None and space.live_build_id > build.id:
        return
    space.live_build_id = build.id
    space.host_id, space.container_id, space.upstream = event.host, event.container, event.upstream
    space.running_sha, space.started_at = build.sha, utcnow()
    current = space.current_build
    if current is not None and current.status.is_active:
        set_stage(ctx, space, progress_stage(space, current.status), space.message)
    elif space.current_build_id == build.id:
        set_stage(ctx, space, Stage.RUNNING)
    else:
        publish(ctx, space)


def on_app_failed(ctx: ControllerContext, session: Session, space: Space, build: Build, event: Event) -> None:
    """The app never became healthy: a runtime error at once."""
    if build.status.is_active:
        fail_build(ctx, space, build, Stage.RUNTIME_ERROR, event.message)


def serves(space: Space, build: Build, event: Event) -> bool:
    """Whether the app the report is about is the one that serves the space: its build, on its
    host (a moved app runs the same build elsewhere, and the old one's end is not the space's)."""
    return space.live_build_id == build.id and (not event.host or space.host_id == event.host)


def on_app_crashed(
    ctx: ControllerContext, session: Session, space: Space, build: Build, event: Event
) -> None:
    """The app that served kept exiting (its host gave up restarting it)."""
    if not serves(space, build, event):
        return
    clear_live(space)
    current = space.current_build
    if current is not None and current.status.is_active:
        set_stage(ctx, space, progress_stage(space, current.status))
    else:
        set_stage(ctx, space, Stage.RUNTIME_ERROR, event.message)


def on_app_slept(ctx: ControllerContext, session: Session, space: Space, build: Build, event: Event) -> None:
    """Its host put the app to sleep (idle, or to make room): the container is stopped and kept,
    and the next visit wakes it there."""
    if not serves(space, build, event):
        return
    clear_live(space)
    set_stage(ctx, space, Stage.SLEEPING, event.message)


def on_app_lost(ctx: ControllerContext, session: Session, space: Space, build: Build, event: Event) -> None:
    """The app's container vanished from its host (removed from outside): start it again."""
    if not serves(space, build, event):
        return
    clear_live(space)
    start_again(
        ctx, session, space, build, f"The app's container disappeared from {event.host}; starting it again"
    )


HANDLERS: dict[EventType, Handler] = {
    EventType.BUILD_STARTED: on_build_started,
    EventType.BUILD_FAILED: on_build_failed,
    EventType.APP_STARTING: on_app_starting,
    EventType.APP_RUNNING: on_app_running,
    EventType.APP_FAILED: on_app_failed,
    EventType.APP_CRASHED: on_app_crashed,
    EventType.APP_SLEPT: on_app_slept,
    EventType.APP_LOST: on_app_lost,
}


def apply_event(ctx: ControllerContext, session: Session, event: Event) -> None:
    """Apply one report. Reports of builds superseded meanwhile change nothing but their own build
    record (see each handler)."""
    space = session.get(Space, event.space_id)
    if space is None:
        return
    if event.type == EventType.WAKE_REQUESTED:
        wake(ctx, session, space)
        return
    build = session.get(Build, event.build_id)
    if build is not None and build.space_id == space.repo_id:
        HANDLERS[event.type](ctx, session, space, build, event)


def apply_with_retries(
    ctx: ControllerContext, event: Event, stop: threading.Event, attempts: int = 5
) -> None:
    """Apply one report; transient failures (a locked database) are retried, a report that keeps
    failing is logged and dropped rather than blocking every report behind it."""
    for attempt in range(1, attempts + 1):
        try:
            with ctx.session() as session:
                apply_event(ctx, session, event)
            return
        except Exception:
            if attempt == attempts:
                log.exception("dropping %s after %d failed attempts", event, attempts)
                return
            log.warning("applying %s failed (attempt %d); retrying", event, attempt, exc_info=True)
            stop.wait(attempt)


def consume_events(ctx: ControllerContext, stop: threading.Event, leading: threading.Event) -> None:
    """Apply reports while `leading` is set, until `stop` is; on taking the lead, first the ones a
    previous leader read but never applied (every leader reads as the same consumer, in order)."""
    pending = True
    while not stop.is_set():
        if not leading.is_set():
            pending = True
            leading.wait(1)
            continue
        try:
            ctx.events.ensure_group()
            if pending:
                ctx.events.adopt_pending(CONSUMER)
            entries = list(ctx.events.read(CONSUMER, pending=pending, block_ms=1000))
            if pending and not entries:
                pending = False
            for entry_id, event in entries:
                apply_with_retries(ctx, event, stop)
                ctx.events.ack(entry_id)
        except redis.RedisError as exc:
            log.warning("event stream unavailable (%s); retrying", exc)
            stop.wait(2)
