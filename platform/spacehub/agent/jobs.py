"""The job functions agents run, named on the queue by their path (queue/scheduling.py's
DEPLOY_JOB): jobs carry ids only, agents fetch the rest from the hub."""

from __future__ import annotations

from rq import get_current_job

from spacehub.agent.context import AgentContext
from spacehub.agent.deploy import run_deploy
from spacehub.queue.scheduling import job_id_for_build


def deploy(build_id: int) -> None:
    """Build a space's commit (unless this host has its image) and start it; runs in an agent's
    work horse, under the capacity reservation its worker made."""
    job = get_current_job()
    run_deploy(AgentContext.from_env(), build_id, job.id if job is not None else job_id_for_build(build_id))
