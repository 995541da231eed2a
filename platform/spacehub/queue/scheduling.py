"""The controller's side of the queue: put deploy jobs on a flavor's queue, cancel them, and read
their state from RQ itself (no parallel status table)."""

from __future__ import annotations

import logging
import time
from datetime import UTC
from enum import StrEnum

import redis
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)

DEPLOY_JOB = "spacehub.agent.jobs.deploy"  # by name: the hub never imports the agent
AVOID_SECONDS = 60.0


class JobState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    MISSING = "missing"


BUILD_JOB_PREFIX = "build-"


def job_id_for_build(build_id: int) -> str:
    """The RQ job id of a build's deploy job (one home: reservations and retries rely on it)."""
    return f"{BUILD_JOB_PREFIX}{build_id}"


def is_build_job(job_id: str) -> bool:
    """Whether `job_id` is a build's deploy job (not another claim on a host, such as a wake's)."""
    return job_id.startswith(BUILD_JOB_PREFIX)


def enqueue_deploy(
    queue: Queue, build_id: int, timeout: int, *, sdk: str, space_id: int, avoid_host: str | None = None
) -> Job:
    """Queue the build and start of `build_id` of space `space_id`; an agent serving the queue's
    flavor runs it (and reserves what an idle app of `sdk` takes; a host short of GPUs only because
    the space's running app holds them hands those over). With `avoid_host`, that host leaves the job
    to the others for AVOID_SECONDS (then anyone may take it: a move must not strand a space when no
    other host has room)."""
    meta: dict[str, object] = {"sdk": sdk, "space_id": space_id}
    if avoid_host:
        meta.update(avoid_host=avoid_host, avoid_until=time.time() + AVOID_SECONDS)
    return queue.enqueue_call(
        DEPLOY_JOB,
        args=(build_id,),
        job_id=job_id_for_build(build_id),
        timeout=timeout,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"build and start build {build_id}",
        meta=meta,
    )


def avoided_by(job: Job, host_id: str) -> bool:
    """Whether `host_id` should leave this job to another host."""
    return job.meta.get("avoid_host") == host_id and time.time() < float(job.meta.get("avoid_until", 0))


def requeue_deploy(
    queue: Queue, build_id: int, timeout: int, *, sdk: str, space_id: int, avoid_host: str | None = None
) -> Job:
    """Queue build `build_id` again (a wake, a move to another host): the previous job of that id,
    finished or abandoned, makes way for the new one."""
    job_id = job_id_for_build(build_id)
    try:
        previous = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        previous = None
    if previous is not None:
        cancel_job(queue.connection, job_id)
        previous.delete(remove_from_queue=True)
    return enqueue_deploy(queue, build_id, timeout, sdk=sdk, space_id=space_id, avoid_host=avoid_host)


def claim_for_host(job: Job, host_id: str) -> None:
    """Record which host took a job (so that its loss is noticed, whatever the host's name)."""
    job.meta["host"] = host_id
    job.save_meta()


def job_host(connection: redis.Redis, job_id: str) -> str | None:
    """The host running a job, if it runs."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None
    return job.meta.get("host") or None


def job_ended_before(connection: redis.Redis, job_id: str, moment: float) -> bool:
    """Whether a job ended, and before `moment` (epoch seconds)."""
    try:
        ended = Job.fetch(job_id, connection=connection).ended_at
    except NoSuchJobError:
        return True
    if ended is None:
        return False
    return (ended if ended.tzinfo else ended.replace(tzinfo=UTC)).timestamp() < moment  # RQ keeps UTC


def cancel_job(connection: redis.Redis, job_id: str) -> None:
    """Stop a job wherever it is: dequeue it if it waits, kill its work horse if it runs."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return
    status = job.get_status(refresh=True)
    try:
        if status == JobStatus.STARTED:
            send_stop_job_command(connection, job_id)
        elif status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            job.cancel()
    except (InvalidJobOperation, NoSuchJobError) as exc:
        log.info("job %s could not be cancelled (%s); it has already ended", job_id, exc)


def job_state(connection: redis.Redis, job_id: str) -> tuple[JobState, str]:
    """What RQ knows of a job, and the reason when it failed."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return JobState.MISSING, "the job is not in the queue any more"
    status = job.get_status(refresh=True)
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, None):
        return JobState.WAITING, ""
    if status == JobStatus.STARTED:
        return JobState.RUNNING, ""
    if status == JobStatus.FINISHED:
        return JobState.DONE, ""
    reason = ""
    result = job.latest_result()
    if result is not None and result.exc_string:
        reason = result.exc_string.strip().splitlines()[-1]
    return JobState.FAILED, reason or f"the job ended as {status}"
