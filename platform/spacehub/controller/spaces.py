"""A space's lifecycle on the controller: a pushed commit becomes a build on the queue; agents'
reports move the space through its stages; every change is mirrored to the proxy's route table."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.controller.buildlogs import build_log_path, close_build_log, persist_build_log
from spacehub.controller.context import ControllerContext
from spacehub.controller.repos import open_git
from spacehub.db.models import Build, BuildStatus, Repo, Space, utcnow
from spacehub.db.session import after_commit
from spacehub.queue.scheduling import cancel_job, enqueue_deploy, job_id_for_build
from spacehub.spec.check import AppSpec, NoAppFile, check_space
from spacehub.spec.config import ConfigError
from spacehub.stages import Stage
from spacehub.state.events import Event, EventType

log = logging.getLogger(__name__)


def publish(ctx: ControllerContext, space: Space) -> None:
    """Mirror what the proxy needs to know of `space` into the route table."""
    ctx.routes.publish_space(
        space.subdomain,
        id=space.repo_id,
        name=space.repo.full_name,
        stage=Stage(space.stage),
        private=space.repo.private,
        sdk=space.sdk,
        message=space.message or "",
        static_sha=space.running_sha if space.sdk == "static" and space.running_sha else "",
        current_build=space.current_build_id,
        live_build=space.live_build_id,
        live_host=space.host_id or "",
    )


def set_stage(ctx: ControllerContext, space: Space, stage: Stage, message: str | None = None) -> None:
    if space.stage != stage:
        log.info("space %s: %s -> %s %s", space.repo.full_name, space.stage, stage, message or "")
        space.stage_changed_at = utcnow()
    space.stage = stage
    space.message = message
    publish(ctx, space)


def is_serving(space: Space) -> bool:
    return space.live_build_id is not None or (space.sdk == "static" and space.running_sha is not None)


def progress_stage(space: Space, status: BuildStatus) -> Stage:
    """The stage of a space whose current build is at `status`."""
    serving = is_serving(space)
    if status == BuildStatus.STARTING:
        return Stage.RUNNING_APP_STARTING if serving else Stage.APP_STARTING
    return Stage.RUNNING_BUILDING if serving else Stage.BUILDING


def handle_push(ctx: ControllerContext, session: Session, repo: Repo) -> Build | None:
    """A push or commit landed in `repo`: deploy the new head of its default branch, if any."""
    repo.updated_at = utcnow()
    space = repo.space
    if space is None:
        return None
    head = open_git(ctx.settings, repo).head()
    if head is None or head == space.desired_sha:
        return None
    return deploy_commit(ctx, session, space, head)


def deploy_commit(
    ctx: ControllerContext, session: Session, space: Space, sha: str, *, factory: bool = False
) -> Build | None:
    """Check commit `sha` and, if it is valid, queue its build (superseding any build in progress)."""
    space.desired_sha = sha
    try:
        app = check_commit(ctx, space, sha)
    except (ConfigError, NoAppFile) as exc:
        supersede_active_builds(ctx, session, space)
        space.current_build_id = None
        stage = Stage.CONFIG_ERROR if isinstance(exc, ConfigError) else Stage.NO_APP_FILE
        set_stage(ctx, space, stage, exc.message)
        return None
    space.card = app.config.card_data()
    space.sdk = app.sdk
    supersede_active_builds(ctx, session, space)
    if app.sdk == "static":
        serve_static(ctx, space, sha)
        return None
    build = Build(space_id=space.repo_id, sha=sha, flavor=space.hardware, factory=factory)
    session.add(build)
    session.flush()
    space.current_build_id = build.id
    set_stage(ctx, space, progress_stage(space, BuildStatus.QUEUED), f"Queued on {space.hardware}")
    timeout = ctx.settings.build_timeout + (app.startup_timeout or ctx.settings.default_startup_timeout) + 300
    queue, build_id = ctx.queue(space.hardware), build.id
    after_commit(session, lambda: enqueue_deploy(queue, build_id, timeout))
    return build


def check_commit(ctx: ControllerContext, space: Space, sha: str) -> AppSpec:
    git = open_git(ctx.settings, space.repo)
    files = {entry.path for entry in git.files(sha)}

    def read_text(path: str) -> str | None:
        data = git.read_file(sha, path)
        return None if data is None else data.decode("utf-8", errors="replace")

    return check_space(files, read_text, space.sdk)


def serve_static(ctx: ControllerContext, space: Space, sha: str) -> None:
    """Static spaces need no container: the proxy serves the commit's files through the hub."""
    space.current_build_id = None
    space.running_sha = sha
    space.started_at = utcnow()
    if space.live_build_id is not None:  # it was an app until this push
        ctx.routes.delete_route(space.subdomain)
        clear_live(space)
    set_stage(ctx, space, Stage.RUNNING)


def supersede_active_builds(ctx: ControllerContext, session: Session, space: Space) -> None:
    active = session.scalars(
        select(Build).where(
            Build.space_id == space.repo_id,
            Build.status.in_([BuildStatus.QUEUED, BuildStatus.BUILDING, BuildStatus.STARTING]),
        )
    ).all()
    for build in active:
        build.status = BuildStatus.SUPERSEDED
        build.finished_at = utcnow()
        build.error_message = "superseded by a newer commit"
        cancel_job(ctx.redis, job_id_for_build(build.id))
        close_build_log(ctx, build.id, "==> Build cancelled: a newer commit superseded it")
        persist_build_log(ctx, build.id)


def clear_live(space: Space) -> None:
    space.live_build_id = None
    space.host_id = space.container_id = space.upstream = None
    space.started_at = None
    if space.sdk != "static":
        space.running_sha = None


def fail_build(ctx: ControllerContext, space: Space, build: Build, stage: Stage, message: str) -> None:
    build.status = BuildStatus.FAILED
    build.error_message = message
    build.finished_at = utcnow()
    if space.current_build_id == build.id:
        set_stage(ctx, space, stage, message)


def apply_event(ctx: ControllerContext, session: Session, event: Event) -> None:
    """Apply one agent report. Reports of builds that were superseded meanwhile change nothing
    but their own build record (and a late `app.running` of an older build is still recorded as
    what serves, since its container does)."""
    space = session.get(Space, event.space_id)
    build = session.get(Build, event.build_id)
    if space is None or build is None or build.space_id != space.repo_id:
        return
    current = space.current_build_id == build.id
    match event.type:
        case EventType.BUILD_STARTED:
            if build.status == BuildStatus.QUEUED:
                build.status = BuildStatus.BUILDING
            build.started_at, build.host_id = utcnow(), event.host
            if current:
                set_stage(
                    ctx, space, progress_stage(space, BuildStatus.BUILDING), f"Building on {event.host}"
                )
        case EventType.BUILD_FAILED:
            persist_build_log(ctx, build.id)
            if build.status.is_active:
                fail_build(ctx, space, build, Stage.BUILD_ERROR, event.message)
        case EventType.APP_STARTING:
            persist_build_log(ctx, build.id)
            build.image = event.image
            if build.status.is_active:
                build.status = BuildStatus.STARTING
            if current:
                set_stage(ctx, space, progress_stage(space, BuildStatus.STARTING), "Starting the app")
        case EventType.APP_RUNNING:
            persist_build_log(ctx, build.id)
            record_running(ctx, space, build, event)
        case EventType.APP_FAILED:
            if build.status.is_active:
                fail_build(ctx, space, build, Stage.RUNTIME_ERROR, event.message)
        case EventType.APP_CRASHED:
            handle_crash(ctx, space, build, event)
        case EventType.APP_STOPPED:
            if space.live_build_id == build.id:
                clear_live(space)
                publish(ctx, space)


def record_running(ctx: ControllerContext, space: Space, build: Build, event: Event) -> None:
    if build.status.is_active:
        build.status = BuildStatus.SUCCEEDED
        build.finished_at = utcnow()
    if space.live_build_id is not None and space.live_build_id > build.id:
        return  # a newer build already serves
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


def handle_crash(ctx: ControllerContext, space: Space, build: Build, event: Event) -> None:
    if space.live_build_id != build.id:
        return
    clear_live(space)
    current = space.current_build
    if current is not None and current.status.is_active:
        set_stage(ctx, space, progress_stage(space, current.status))
    else:
        set_stage(ctx, space, Stage.RUNTIME_ERROR, event.message)


def delete_space(ctx: ControllerContext, session: Session, space: Space) -> None:
    """Forget a space everywhere but the database row (the caller deletes it): builds are
    cancelled, the route and logs removed; agents remove its containers when they see the route
    gone."""
    supersede_active_builds(ctx, session, space)
    ctx.routes.remove_space(space.subdomain)
    ctx.redis.delete(ctx.keys.run_log(space.repo_id))
    for build_id in session.scalars(select(Build.id).where(Build.space_id == space.repo_id)):
        ctx.redis.delete(ctx.keys.build_log(build_id))
        build_log_path(ctx.settings, build_id).unlink(missing_ok=True)
