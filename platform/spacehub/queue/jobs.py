"""Job functions, importable by every agent. Jobs carry ids only; agents fetch the rest."""

from __future__ import annotations


def deploy(build_id: int) -> None:
    """Build a space's commit and start it (runs in an agent's work horse)."""
    from spacehub.agent.context import AgentContext
    from spacehub.agent.deploy import run_deploy

    run_deploy(AgentContext.from_env(), build_id)
