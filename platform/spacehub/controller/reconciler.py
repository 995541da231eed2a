"""Drives actual state toward desired state, so that no space stays stuck in an intermediate
stage whatever dies: a lost build job fails its build, a wiped Redis gets its records back."""

from __future__ import annotations

import logging
import threading

import redis
from sqlalchemy import select

from spacehub.controller.buildlogs import close_build_log, persist_build_log
from spacehub.controller.context import ControllerContext
from spacehub.controller.spaces import fail_build, publish
from spacehub.db.models import Build, BuildStatus, Space
from spacehub.queue.scheduling import JobState, job_id_for_build, job_state
from spacehub.stages import Stage

log = logging.getLogger(__name__)


def publish_instance(ctx: ControllerContext, instance_id: str) -> None:
    """Facts agents need about this installation."""
    settings = ctx.settings
    ctx.redis.hset(
        ctx.keys.instance,
        mapping={
            "id": instance_id,
            "public_url": settings.resolved_public_url,
            "routing": settings.routing,
            "port": settings.port,
        },
    )


def check_builds(ctx: ControllerContext) -> None:
    """Fail builds whose job is gone or failed without a report (agent killed, job timed out)."""
    with ctx.session() as session:
        active = session.scalars(
            select(Build).where(
                Build.status.in_([BuildStatus.QUEUED, BuildStatus.BUILDING, BuildStatus.STARTING])
            )
        ).all()
        for build in active:
            state, reason = job_state(ctx.redis, job_id_for_build(build.id))
            if state not in (JobState.MISSING, JobState.FAILED):
                continue
            space = session.get(Space, build.space_id)
            if space is None:
                continue
            stage = Stage.RUNTIME_ERROR if build.status == BuildStatus.STARTING else Stage.BUILD_ERROR
            message = f"the deploy job stopped without finishing: {reason}"
            log.warning("build %s of space %s: %s", build.id, space.repo_id, message)
            close_build_log(ctx, build.id, f"==> {message}")
            persist_build_log(ctx, build.id)
            fail_build(ctx, space, build, stage, message)


def republish_spaces(ctx: ControllerContext) -> None:
    """Restore space records the route table lost (a Redis restart)."""
    known = {m.decode() for m in ctx.redis.smembers(ctx.keys.spaces)}
    with ctx.session() as session:
        for space in session.scalars(select(Space)):
            if space.subdomain not in known:
                publish(ctx, space)


def reconcile_once(ctx: ControllerContext, instance_id: str) -> None:
    publish_instance(ctx, instance_id)
    republish_spaces(ctx)
    check_builds(ctx)


def run_reconciler(ctx: ControllerContext, instance_id: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            reconcile_once(ctx, instance_id)
        except redis.ConnectionError as exc:
            log.warning("reconciler: Redis unavailable (%s)", exc)
        except Exception:
            log.exception("reconciler pass failed")
        stop.wait(ctx.settings.reconcile_interval)
