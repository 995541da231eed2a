"""Faults that are not the user's: a build whose job process is killed, an agent killed outright,
reports lost on their way to the controller, an app firewall that cannot be installed. The
platform repairs each; none shows as the space's error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import redis

from tests.utils.platform import Platform
from tests.utils.waiting import wait_until


def slow_dockerfile() -> dict[str, str]:
    """A space whose build takes 15 s, every time: a fresh nonce keeps Docker's layer cache (of an
    earlier run on the same engine) from finishing it before the test sees it."""
    return {
        "README.md": "---\nsdk: docker\napp_port: 8080\n---\n",
        "Dockerfile": f"""FROM python:3.11-slim
RUN echo {uuid.uuid4().hex} && sleep 15 && echo built > /built
RUN useradd -m -u 1000 user
USER user
CMD ["python", "-m", "http.server", "8080"]
""",
    }


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def build_process(tag_part: str) -> int | None:
    """The pid of the `docker build` whose tag names this space, if one runs."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if " build " in command and tag_part in command:
            return int(proc.name)
    return None


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_build_whose_job_process_is_killed_is_retried(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, sdk="docker")
    platform.push(space, slow_dockerfile())
    tag_part = f"spacehub/app-{platform.instance_id()}-{platform.info(space)['_id']}:"
    builder = wait_until(
        lambda: build_process(tag_part),
        timeout=300,
        what="the build to start",
        last=lambda: (platform.runtime(space), platform.logs(space, "build", read_timeout=1)[-2000:]),
    )
    os.kill(parent_of(builder), signal.SIGKILL)  # the work horse running the job

    runtime = platform.wait_stage(space, "RUNNING", timeout=600)
    assert runtime["errorMessage"] is None
    assert "Work-horse" not in platform.logs(space, "build")


def test_a_killed_agent_takes_its_workers_along(platform: Platform) -> None:
    platform.start_agent("doomed", host_id=f"doomed.{platform.namespace}", flavors="cpu-upgrade")
    agent = platform.processes["doomed"]
    workers = wait_until(lambda: children_of(agent.pid), timeout=30, what="the agent's workers")
    platform.stop_process("doomed", sig=signal.SIGKILL)
    wait_until(
        lambda: not [pid for pid in workers if Path(f"/proc/{pid}").exists() and not _zombie(pid)],
        timeout=30,
        what="the dead agent's workers to exit",
    )


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def test_reports_lost_on_the_way_do_not_strand_a_space(platform: Platform, space_name: str) -> None:
    """The controller is away while the agent starts an app, and the agent's reports are lost: the
    reconciler finds the finished job and the live route, and the space runs."""
    from tests.e2e.apps import gradio_files

    space = platform.create_space(space_name)
    subdomain = platform.info(space)["subdomain"]
    platform.push(space, gradio_files("lost"))
    client = docker.from_env()
    wait_until(
        lambda: [c for c in client.containers.list() if c.labels.get("spacehub.subdomain") == subdomain],
        timeout=300,
        what="the app's container",
    )
    platform.stop_process("controller", sig=signal.SIGKILL)
    connection = redis.Redis.from_url(platform.redis_url)
    wait_until(
        lambda: connection.hget(f"{platform.namespace}:space:{subdomain}", "upstream"),
        timeout=120,
        what="the agent to route to the app",
    )
    connection.xtrim(f"{platform.namespace}:events", maxlen=0)  # every report is lost
    platform.restart("controller")
    platform._wait_http(f"{platform.controller_url}/healthz")
    runtime = platform.wait_stage(space, "RUNNING", timeout=120)
    assert runtime["sha"] is not None


def test_an_agent_that_cannot_firewall_apps_does_not_run_them(platform: Platform, tmp_path: Path) -> None:
    env = {
        **platform.env,
        "PATH": "/usr/bin:/bin",  # no iptables (it lives in /usr/sbin)
        "SPACEHUB_HOST_ID": f"open-{platform.namespace}",
        "SPACEHUB_AGENT_FLAVORS": '["cpu-upgrade"]',
    }
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.run(
            [sys.executable, "-m", "spacehub.cli", "agent"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
    assert agent.returncode != 0
    assert "cannot firewall" in log.read_text()
