"""A space's lifecycle on the controller: a pushed commit becomes a build on the queue; agents'
reports move the space through its stages; every change is mirrored to the proxy's route table."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from spacehub.controller.context import ControllerContext
from spacehub.controller.logs import close_build_log, persist_build_log
from spacehub.controller.parquet import convert_soon
from spacehub.controller.repos import (
    open_git,
)
from spacehub.db.models import Build, BuildStatus, Repo, RepoType, Space, utcnow
from spacehub.db.session import after_commit, before_commit
from spacehub.errors import BadRequest, Conflict
from spacehub.queue.scheduling import cancel_job, enqueue_deploy, job_id_for_build, requeue_deploy
from spacehub.spec.check import AppSpec, NoAppFile, check_space
from spacehub.spec.config import SDKS as SDKS  # the SDKs a space may use, for the pages' forms
from spacehub.spec.config import ConfigError
from spacehub.spec.frontmatter import FrontMatterError, json_safe, parse_front_matter
from spacehub.stages import Stage, Tier
from spacehub.state.routes import SpaceFacts

log = logging.getLogger(__name__)

PENDING_PUBLISH = "spaces to publish"


def space_facts(ctx: ControllerContext, space: Space) -> SpaceFacts:
    """What the edge and the agents need to know of `space`."""
    flavor = ctx.flavors.get(space.hardware)
    return SpaceFacts(
        subdomain=space.subdomain,
        id=space.repo_id,
        name=space.repo.full_name,
        stage=Stage(space.stage),
        private=space.repo.private and not space.protected,
        sdk=space.sdk,
        message=space.message or "",
        static_sha=space.running_sha if space.sdk == "static" and space.running_sha else "",
        current_build=space.current_build_id,
        live_build=space.live_build_id,
        live_host=space.host_id or "",
        freeze_after=flavor.freeze_seconds if flavor else None,
        sleep_after=effective_sleep_time(ctx, space),
        headers=(space.repo.card or {}).get("custom_headers") or {},
        embeddable=not (space.repo.card or {}).get("disable_embedding"),
        domain=space.custom_domain if space.custom_domain and not space.repo.private else "",
    )


def publish(ctx: ControllerContext, space: Space) -> None:
    """Mirror `space` into the route table once its transaction commits: what the edge and the
    agents see never runs ahead of the database (a rollback leaves them as they were)."""
    session = object_session(space)
    if session is None:
        ctx.routes.publish_space(space_facts(ctx, space))
        return
    pending: dict[int, Space] = session.info.setdefault(PENDING_PUBLISH, {})
    if not pending:
        before_commit(session, lambda: _publish_at_commit(ctx, session))
    pending[id(space)] = space


def _publish_at_commit(ctx: ControllerContext, session: Session) -> None:
    """Read the facts while the transaction can still be read, write them once it is committed."""
    pending: dict[int, Space] = session.info.pop(PENDING_PUBLISH, {})
    session.flush()  # new spaces get their ids, deleted ones leave the session
    facts = [space_facts(ctx, space) for space in pending.values() if space in session]

    # First among the side effects: an agent that takes a job at once must find its build current.
    def write() -> None:
        for fact in facts:
            ctx.routes.publish_space(fact)

    after_commit(session, write, first=True)


def once_committed(space: Space, action: Callable[[], object]) -> None:
    """Run a side effect of a change to `space` (on Redis, on the queue) once that change is
    committed; at once for a space outside any session."""
    session = object_session(space)
    if session is None:
        action()
    else:
        after_commit(session, action)


def effective_sleep_time(ctx: ControllerContext, space: Space) -> int | None:
    """Seconds without visitors before the space sleeps: its own setting, else its flavor's
    default; None: never."""
    if space.sleep_time is not None:
        return None if space.sleep_time < 0 else space.sleep_time
    flavor = ctx.flavors.get(space.hardware)
    return flavor.default_sleep_seconds if flavor else None


def validate_sleep_time(seconds: int | None) -> int | None:
    """A sleep time as owners set it: seconds, -1 for never, None for the flavor's default."""
    if seconds is not None and seconds != -1 and seconds < 1:
        raise BadRequest("sleep time must be a number of seconds, or -1 for never")
    return seconds


def set_sleep_time(ctx: ControllerContext, space: Space, seconds: int | None) -> None:
    """Change the idle time before the space sleeps; its agent applies it at once."""
    space.sleep_time = validate_sleep_time(seconds)
    publish(ctx, space)


def set_stage(ctx: ControllerContext, space: Space, stage: Stage, message: str | None = None) -> None:
    """Move the space to `stage` with `message` (logged when the stage changes) and publish its route."""
    if space.stage != stage:
        log.info("space %s: %s -> %s %s", space.repo.full_name, space.stage, stage, message or "")
        space.stage_changed_at = utcnow()
    space.stage = stage
    space.message = message
    publish(ctx, space)


def is_serving(space: Space) -> bool:
    """An app (or a static space's files) answers visitors."""
    return space.live_build_id is not None or (space.sdk == "static" and space.running_sha is not None)


def tier_of(ctx: ControllerContext, space: Space) -> str | None:
    """How awake the space's app is (`serving`, `frozen`, `checkpointed`, `sleeping`); None when it
    runs no app. The Hub stage stays RUNNING while an app is frozen or checkpointed."""
    if space.stage == Stage.SLEEPING:
        return Tier.SLEEPING.value
    if not is_serving(space):
        return None
    if space.sdk == "static":
        return Tier.SERVING.value
    tier = ctx.redis.hget(ctx.keys.space(space.subdomain), "tier")
    return tier.decode() if tier else Tier.SERVING.value


def progress_stage(space: Space, status: BuildStatus) -> Stage:
    """The stage of a space whose current build is at `status`."""
    serving = is_serving(space)
    if status == BuildStatus.STARTING:
        return Stage.RUNNING_APP_STARTING if serving else Stage.APP_STARTING
    return Stage.RUNNING_BUILDING if serving else Stage.BUILDING


def handle_push(ctx: ControllerContext, session: Session, repo: Repo) -> Build | None:
    """A push or commit landed in `repo`: deploy the new head of its default branch, if any."""
    repo.updated_at = utcnow()
    head = open_git(ctx.settings, repo).head()
    space = repo.space
    if space is None:
        refresh_card(ctx, repo, head)
        if repo.type == RepoType.DATASET and head is not None:
            after_commit(session, lambda: convert_soon(ctx, repo.id))
        return None
    if head is None or head == space.desired_sha:
        return None
    if space.paused:
        space.desired_sha = head
        set_stage(ctx, space, Stage.PAUSED, "Paused by its owner: the new commit deploys on restart")
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
    space.repo.card = json_safe(app.config.card_data())
    space.sdk = app.sdk
    supersede_active_builds(ctx, session, space)
    if app.sdk == "static":
        serve_static(ctx, space, sha)
        return None
    build = Build(
        space_id=space.repo_id,
        sha=sha,
        flavor=space.hardware,
        factory=factory,
        startup_timeout=app.startup_timeout,
    )
    session.add(build)
    session.flush()
    space.current_build_id = build.id
    set_stage(ctx, space, progress_stage(space, BuildStatus.QUEUED), f"Queued on {space.hardware}")
    timeout = job_timeout(ctx, build)
    queue, build_id = ctx.queue(space.hardware), build.id
    space_id = space.repo_id
    after_commit(session, lambda: enqueue_deploy(queue, build_id, timeout, sdk=app.sdk, space_id=space_id))
    return build


def job_timeout(ctx: ControllerContext, build: Build) -> int:
    """How long a deploy job of `build` may run, the first time and every time again: the build,
    the app's start (its startup_duration_timeout, or the default), and a margin."""
    settings = ctx.settings
    return settings.build_timeout + (build.startup_timeout or settings.default_startup_timeout) + 300


def refresh_card(ctx: ControllerContext, repo: Repo, sha: str | None) -> None:
    """The README front matter of a model or dataset, for its `cardData` and tags (lenient: a
    broken card is shown empty rather than refusing the push)."""
    readme = open_git(ctx.settings, repo).read_file(sha, "README.md") if sha else None
    try:
        front = parse_front_matter(readme.decode("utf-8", "replace")) if readme else None
    except FrontMatterError:
        front = None
    repo.card = json_safe(front.data) if front is not None else {}


def check_commit(ctx: ControllerContext, space: Space, sha: str) -> AppSpec:
    """The app spec of the space's commit `sha`; ConfigError or NoAppFile when it has none to deploy."""
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
        subdomain = space.subdomain
        once_committed(space, lambda: ctx.routes.delete_route(subdomain))
        clear_live(space)
    set_stage(ctx, space, Stage.RUNNING)


def supersede_active_builds(ctx: ControllerContext, session: Session, space: Space) -> None:
    """Mark the space's queued and running builds superseded; their jobs are cancelled after the commit."""
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
        # Once the database says so: the reconciler takes a cancelled job of a build it still
        # sees as current for a failure.
        after_commit(session, functools.partial(cancel_superseded, ctx, build.id))


def cancel_superseded(ctx: ControllerContext, build_id: int) -> None:
    """Cancel a superseded build's job and close its log with a line saying why."""
    cancel_job(ctx.redis, job_id_for_build(build_id))
    close_build_log(ctx, build_id, "==> Build cancelled: a newer commit superseded it")
    persist_build_log(ctx, build_id)


def restart(ctx: ControllerContext, session: Session, space: Space, *, factory: bool = False) -> Build | None:
    """Deploy the space's commit again (unpausing it); `factory` rebuilds without any cache.
    A plain restart rebuilds too, but every layer comes from the cache: seconds."""
    space.paused = False
    sha = space.desired_sha or open_git(ctx.settings, space.repo).head()
    if sha is None:
        set_stage(ctx, space, Stage.NO_APP_FILE, "the repository is empty: push an app")
        return None
    return deploy_commit(ctx, session, space, sha, factory=factory)


def pause(ctx: ControllerContext, session: Session, space: Space) -> None:
    """Stop the app until its owner restarts it; visits do not wake a paused space."""
    if space.sdk == "static":
        raise BadRequest("static spaces cannot be paused: they run no app")
    supersede_active_builds(ctx, session, space)
    space.paused = True
    space.current_build_id = None
    stop_serving(ctx, space)
    set_stage(ctx, space, Stage.PAUSED, "Paused by its owner")


def start_again(
    ctx: ControllerContext,
    session: Session,
    space: Space,
    build: Build,
    message: str,
    *,
    avoid_host: str | None = None,
) -> None:
    """Run an earlier, successful build's app again (a wake, a move off a lost host). The agent
    reuses its image where it has it, pulls it from the registry, or builds it again."""
    space.current_build_id = build.id
    build.status, build.error_message, build.finished_at = BuildStatus.STARTING, None, None
    set_stage(ctx, space, progress_stage(space, BuildStatus.STARTING), message)
    timeout = job_timeout(ctx, build)
    queue, build_id, sdk, space_id = ctx.queue(space.hardware), build.id, space.sdk, space.repo_id
    after_commit(
        session,
        lambda: requeue_deploy(queue, build_id, timeout, sdk=sdk, space_id=space_id, avoid_host=avoid_host),
    )


def move(ctx: ControllerContext, session: Session, space: Space) -> None:
    """Start the running app on another host of its flavor; the old container serves until the new
    one is healthy, then goes. Where no other host has room within a minute, it starts again on
    the same host."""
    build = space.live_build
    if build is None or space.host_id is None:
        raise BadRequest(f"{space.repo.full_name} runs nowhere: there is nothing to move")
    if space.current_build_id != build.id and space.current_build and space.current_build.status.is_active:
        raise Conflict(f"{space.repo.full_name} is deploying a new version: move it once that is done")
    start_again(ctx, session, space, build, f"Moving off {space.host_id}", avoid_host=space.host_id)


def wake(ctx: ControllerContext, session: Session, space: Space) -> None:
    """A visit to a sleeping space that its own host will not wake (that host is gone, or handed
    it over): start its last build again wherever there is room (paused spaces stay paused)."""
    if space.stage != Stage.SLEEPING or space.paused:
        return
    record = ctx.routes.get(space.subdomain)
    if record is not None and record.tier == Tier.SLEEPING and record.host and ctx.hosts.get(record.host):
        return  # its host wakes it: the edge asked it directly
    build = space.current_build
    if build is None or build.sha != space.desired_sha:
        restart(ctx, session, space)
        return
    start_again(ctx, session, space, build, "Waking up")


def stop_serving(ctx: ControllerContext, space: Space) -> None:
    """Take the app out of the route table; its agent removes the container when it sees that."""
    subdomain = space.subdomain
    once_committed(space, lambda: ctx.routes.delete_route(subdomain))
    clear_live(space)
    if space.sdk == "static":
        space.running_sha = None


def redeploy_if_deployed(ctx: ControllerContext, session: Session, space: Space) -> None:
    """After a change of hardware, secrets or variables: restart with the new values."""
    if space.paused or (space.desired_sha is None and space.live_build_id is None):
        return
    if space.stage in (Stage.CONFIG_ERROR, Stage.NO_APP_FILE):
        return
    restart(ctx, session, space)


def clear_live(space: Space) -> None:
    """Forget the space's running app (build, host, container, upstream); a static space keeps its commit."""
    space.live_build_id = None
    space.host_id = space.container_id = space.upstream = None
    space.started_at = None
    if space.sdk != "static":
        space.running_sha = None


def fail_build(ctx: ControllerContext, space: Space, build: Build, stage: Stage, message: str) -> None:
    """Mark the build failed; if it is the space's current build, the space moves to `stage`."""
    build.status = BuildStatus.FAILED
    build.error_message = message
    build.finished_at = utcnow()
    if space.current_build_id == build.id:
        set_stage(ctx, space, stage, message)
