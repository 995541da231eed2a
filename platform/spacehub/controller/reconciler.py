"""Drives actual state toward desired state, so that no space stays stuck whatever dies:

- a build whose job vanished, died or whose host stopped answering is queued again (the platform's
  faults are never the space's error); one whose job ended without its report arriving is
  finished from what the route table shows;
- a job nobody can take yet says why (no host serves the flavor, every one is full);
- a space served by a host whose heartbeats stopped is started again elsewhere;
- the route table is made to say what the database says: at once after Redis lost everything, and
  every `route_audit_interval` seconds for a write lost on its way."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from dataclasses import dataclass, field

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from spacehub.controller.context import ControllerContext
from spacehub.controller.events import on_app_running
from spacehub.controller.spaces import (
    job_timeout,
    once_committed,
    set_stage,
    space_facts,
    start_again,
)
from spacehub.db.models import Build, BuildStatus, Space, utcnow
from spacehub.queue.scheduling import (
    JobState,
    job_ended_before,
    job_host,
    job_id_for_build,
    job_state,
    requeue_deploy,
)
from spacehub.stages import Stage
from spacehub.state.events import Event, EventType
from spacehub.state.hosts import HostRecord

log = logging.getLogger(__name__)

MAX_JOB_RETRIES = 3
SLOW_RETRY_SECONDS = 600
REPORT_GRACE_SECONDS = 10.0  # how long after its job ended a build's reports may still be arriving
USAGE_SAMPLE_SECONDS = 30.0
USAGE_SAMPLES = 120
WAITING_NOTICE_SECONDS = 3.0


@dataclass
class Reconciler:
    ctx: ControllerContext
    instance_id: str
    missing_since: dict[str, float] = field(default_factory=dict)
    retries: dict[int, tuple[int, float]] = field(default_factory=dict)  # build -> (attempts, last)
    last_sample: float = 0.0
    last_audit: float = float("-inf")

    def run(self, stop: threading.Event, leading: threading.Event) -> None:
        """Reconcile every `reconcile_interval` seconds while `leading` is set, until `stop` is,
        surviving failed passes."""
        while not stop.is_set():
            try:
                if leading.is_set():
                    self.reconcile_once()
            except redis.ConnectionError as exc:
                log.warning("reconciler: Redis unavailable (%s)", exc)
            except Exception:
                log.exception("reconciler pass failed")
            stop.wait(self.ctx.settings.reconcile_interval)

    def reconcile_once(self) -> None:
        """One pass: publish the installation and routes, sample usage, repair builds and lost hosts."""
        redis_was_empty = publish_instance(self.ctx, self.instance_id)
        now = time.monotonic()
        if redis_was_empty or now - self.last_audit >= self.ctx.settings.route_audit_interval:
            republish_spaces(self.ctx)
            self.last_audit = now
        hosts = self.ctx.hosts.alive()
        self.sample_usage(hosts)
        lost = self.lost_hosts(hosts)
        self.check_builds(hosts, lost)
        self.reschedule_from(lost)

    # Hosts -------------------------------------------------------------------------------------

    def sample_usage(self, hosts: dict[str, HostRecord]) -> None:
        """Keep an hour of each host's allocation (every 30 s), for the dashboard's plot."""
        now = time.time()
        if now - self.last_sample < USAGE_SAMPLE_SECONDS:
            return
        self.last_sample = now
        pipe = self.ctx.redis.pipeline()
        for host in hosts.values():
            sample = {
                "t": now,
                "cpu": 100 * host.used_cpu / host.cpus if host.cpus else 0,
                "mem": 100 * host.used_memory / host.memory if host.memory else 0,
            }
            pipe.lpush(self.ctx.keys.usage(host.host), json.dumps(sample))
            pipe.ltrim(self.ctx.keys.usage(host.host), 0, USAGE_SAMPLES - 1)
        pipe.execute()

    def lost_hosts(self, alive: dict[str, HostRecord]) -> set[str]:
        """Hosts gone silent for longer than the grace period (a Redis restart that forgot every
        heartbeat is not a reason to move anything: hosts report again within one interval)."""
        now = time.monotonic()
        with self.ctx.session() as session:
            serving = {
                h for h in session.scalars(select(Space.host_id).where(Space.host_id.is_not(None))) if h
            }
        known = self.ctx.hosts.known() | serving
        for host in list(self.missing_since):
            if host in alive:
                del self.missing_since[host]
        for host in known - set(alive):
            self.missing_since.setdefault(host, now)
        grace = self.ctx.settings.host_loss_grace
        return {host for host, since in self.missing_since.items() if now - since >= grace}

    def reschedule_from(self, lost: set[str]) -> None:
        """Start the spaces of lost hosts elsewhere: build again if a build is under way, else restart."""
        if not lost:
            return
        with self.ctx.session() as session:
            stranded = session.scalars(
                select(Space).where(Space.host_id.in_(lost), Space.live_build_id.is_not(None))
            ).all()
            for space in stranded:
                build, host, live_build_id = space.live_build, space.host_id, space.live_build_id
                assert host is not None and live_build_id is not None  # as selected
                log.warning(
                    "space %s: host %s stopped answering; starting it elsewhere", space.repo.full_name, host
                )
                forget = functools.partial(
                    self.ctx.routes.delete_route, space.subdomain, (live_build_id, host)
                )
                once_committed(space, forget)
                space.live_build_id = None
                space.host_id = space.container_id = space.upstream = None
                current = space.current_build
                if current is not None and current.status.is_active:
                    set_stage(
                        self.ctx, space, Stage.BUILDING, f"Host {host} stopped answering; building elsewhere"
                    )
                elif build is not None:
                    start_again(
                        self.ctx, session, space, build, f"Host {host} stopped answering; moving the app"
                    )

    # Builds and jobs ----------------------------------------------------------------------------

    def check_builds(self, hosts: dict[str, HostRecord], lost: set[str]) -> None:
        """Repair every active build by its job: explain a wait, queue again a job that died or
        whose host went silent, finish a build whose job ended without its report arriving. A
        job's failure is never the space's (builds and apps report their own errors): it is retried."""
        with self.ctx.session() as session:
            active = session.scalars(
                select(Build).where(
                    Build.status.in_([BuildStatus.QUEUED, BuildStatus.BUILDING, BuildStatus.STARTING])
                )
            ).all()
            for build in active:
                space = session.get(Space, build.space_id)
                if space is None:
                    continue
                job_id = job_id_for_build(build.id)
                state, reason = job_state(self.ctx.redis, job_id)
                if state == JobState.WAITING:
                    self.explain_wait(space, build, hosts)
                elif state == JobState.RUNNING:
                    host = job_host(self.ctx.redis, job_id)
                    if host in lost:
                        self.retry(space, build, f"host {host} stopped answering")
                elif not self.still_current(session, space, build):
                    continue
                elif state == JobState.DONE:
                    self.finish_unreported(session, space, build, job_id)
                else:
                    self.retry(space, build, f"its job ended without finishing ({reason})")

    @staticmethod
    def still_current(session: Session, space: Space, build: Build) -> bool:
        """Whether `build` is still what the space is deploying, read again: a newer push or a
        pause may have superseded it (and cancelled its job) since this pass loaded it."""
        session.refresh(build)
        session.refresh(space)
        return build.status.is_active and space.current_build_id == build.id

    def finish_unreported(self, session: Session, space: Space, build: Build, job_id: str) -> None:
        """The job ended, but its reports never arrived (lost on the way): the route table shows
        whether its app serves; if it does, that is recorded, otherwise the job runs again."""
        if not job_ended_before(self.ctx.redis, job_id, time.time() - REPORT_GRACE_SECONDS):
            return  # its reports may still be on their way
        record = self.ctx.routes.get(space.subdomain)
        if record is not None and record.build == build.id and record.upstream:
            log.warning("build %s runs on %s but its report was lost: recording it", build.id, record.host)
            event = Event(
                type=EventType.APP_RUNNING,
                space_id=space.repo_id,
                build_id=build.id,
                host=record.host,
                upstream=record.upstream,
            )
            on_app_running(self.ctx, session, space, build, event)
        else:
            self.retry(space, build, "its job ended but its report was lost")

    def retry(self, space: Space, build: Build, why: str) -> None:
        """Queue the build's job again: at once for the first MAX_JOB_RETRIES times, then every
        SLOW_RETRY_SECONDS. The platform's faults never become the space's error."""
        attempts, last = self.retries.get(build.id, (0, 0.0))
        now = time.monotonic()
        if attempts >= MAX_JOB_RETRIES and now - last < SLOW_RETRY_SECONDS:
            return
        self.retries[build.id] = (attempts + 1, now)
        log.warning("build %s: %s; queueing it again (attempt %d)", build.id, why, attempts + 1)
        requeue_deploy(
            self.ctx.queue(space.hardware),
            build.id,
            job_timeout(self.ctx, build),
            sdk=space.sdk,
            space_id=space.repo_id,
        )
        if attempts + 1 >= MAX_JOB_RETRIES:
            message = (
                f"The platform failed to run this build {attempts + 1} times ({why}); it tries again every "
                f"{SLOW_RETRY_SECONDS // 60} min, and the operators can see why in the admin dashboard"
            )
        else:
            message = f"Retrying: {why}"
        set_stage(self.ctx, space, space.stage, message)

    def explain_wait(self, space: Space, build: Build, hosts: dict[str, HostRecord]) -> None:
        """Say why a queued job is not taken: no host serves its flavor, all of them are full, or
        they are busy with the builds queued before it."""
        if (utcnow() - build.created_at).total_seconds() < WAITING_NOTICE_SECONDS:
            return
        flavor = self.ctx.flavors.get(build.flavor)
        serving = [h for h in hosts.values() if build.flavor in h.flavors]
        if flavor is None:
            message = f"Waiting for hardware: hardware {build.flavor} is not configured"
        elif not serving:
            message = f"Waiting for hardware: no host serving {build.flavor} is connected"
        else:
            request = flavor.request_for(space.sdk)
            shortages = {h.host: h.shortage(request.cpu, request.memory_bytes, flavor.gpus) for h in serving}
            if any(short is None for short in shortages.values()):
                message = f"Queued on {build.flavor}: its hosts are busy with the builds queued before it"
            else:
                details = "; ".join(
                    f"{h.host}: {h.describe_shortage(shortages[h.host] or '')}" for h in serving
                )
                message = (
                    f"Waiting for hardware: every host serving {build.flavor} is full ({details}); "
                    "it starts when capacity frees"
                )
        if space.message != message and space.current_build_id == build.id:
            set_stage(self.ctx, space, space.stage, message)


def publish_instance(ctx: ControllerContext, instance_id: str) -> bool:
    """Facts agents need about this installation; whether Redis had lost them (emptied, replaced)."""
    settings = ctx.settings
    pipe = ctx.redis.pipeline()
    pipe.exists(ctx.keys.instance)
    pipe.hset(
        ctx.keys.instance,
        mapping={
            "id": instance_id,
            "public_url": settings.resolved_public_url,
            "routing": settings.routing,
            "port": settings.port,
        },
    )
    return not pipe.execute()[0]


def republish_spaces(ctx: ControllerContext) -> None:
    """Make the route table say of every space what the database says: restore records Redis lost
    (a restart, a flush), correct those that differ, drop those of spaces that are gone."""
    recorded = ctx.routes.subdomains()  # before the database: a space created meanwhile stays
    with ctx.session() as session:
        spaces = session.scalars(select(Space).options(joinedload(Space.repo)))
        facts = [space_facts(ctx, space) for space in spaces]
    for fact in ctx.routes.differing(facts):
        log.info("the route table's record of %s differs from the database: published again", fact.name)
        ctx.routes.publish_space(fact)
    for stale in recorded - {fact.subdomain for fact in facts}:
        ctx.routes.remove_space(stale)
