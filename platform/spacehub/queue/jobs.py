"""Job functions, importable by every agent. Jobs carry ids only; agents fetch the rest."""

from __future__ import annotations


def deploy(build_id: int) -> None:
    """Build a space's commit (unless this host has its image) and start it; runs in an agent's
    work horse, under the capacity reservation its worker made."""
    from rq import get_current_job

    from spacehub.agent.context import AgentContext
    from spacehub.agent.deploy import run_deploy

    job = get_current_job()
    run_deploy(AgentContext.from_env(), build_id, job.id if job is not None else f"build-{build_id}")
