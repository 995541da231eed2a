"""The `spacehub` command: one subcommand per process, and `up` to run them all on one machine."""

from __future__ import annotations

import logging
import sys

import click

from spacehub.config import get_settings


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """spacehub: a self-hosted platform for interactive ML demo apps."""
    _configure_logging(verbose)


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from spacehub.db.migrate import upgrade

    upgrade(get_settings().resolved_database_url)


@main.command()
def controller() -> None:
    """Run the controller (API, git, web UI) on its internal port."""
    import uvicorn

    from spacehub.application import create_app
    from spacehub.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    uvicorn.run(
        create_app(settings),
        host=settings.controller_host,
        port=settings.resolved_controller_port,
        log_level="warning",
        timeout_graceful_shutdown=5,
        date_header=False,  # the app sets an exact one (api.app.DateHeader)
    )


@main.command()
def proxy() -> None:
    """Run the edge proxy on the public port."""
    from spacehub.proxy.server import run_proxy

    run_proxy(get_settings())


@main.command()
def agent() -> None:
    """Run a host agent: builds and runs apps on this machine's Docker engine."""
    from spacehub.agent.main import run_agent

    run_agent(get_settings())


@main.command()
def settings() -> None:
    """Print the configuration reference (every SPACEHUB_ variable)."""
    from spacehub.config import settings_reference

    click.echo(settings_reference())


@main.command()
@click.option("--demo/--no-demo", default=True, help="Create and start the demo space.")
def up(demo: bool) -> None:
    """Run the whole platform on this machine (Redis, controller, proxy, agent) until interrupted."""
    from spacehub.launcher import run_platform

    sys.exit(run_platform(get_settings(), demo=demo))


if __name__ == "__main__":
    main()
