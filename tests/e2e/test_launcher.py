"""`spacehub up` (what `make up` runs): the whole platform and a demo space a browser can open."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import httpx
import pytest

from spacehub.agent.network import remove_app_network
from tests.utils.platform import free_port_pair
from tests.utils.waiting import wait_until


@pytest.fixture
def installation(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEHUB_")}
    env.update(
        SPACEHUB_DATA_DIR=str(data_dir),
        SPACEHUB_PORT=str(port),
        SPACEHUB_NAMESPACE="uptest",
        PYTHONUNBUFFERED="1",
    )
    yield data_dir, port, env
    instance = (data_dir / "instance-id").read_text().strip() if (data_dir / "instance-id").exists() else None
    client = docker.from_env()
    if instance:
        for container in client.containers.list(all=True, filters={"label": f"spacehub.instance={instance}"}):
            container.remove(force=True)
    remove_app_network(client, "uptest-apps")


def child_pid(parent: int, command: str) -> int:
    """The pid of `parent`'s child whose command line contains `command`."""
    for pid in subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split():
        if command in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
            return int(pid)
    raise AssertionError(f"no child of {parent} runs {command}")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, trust_env=False, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_up_starts_everything_and_the_demo(installation) -> None:
    data_dir, port, env = installation
    process = subprocess.Popen(
        [sys.executable, "-m", "spacehub.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    app_url = None
    try:
        deadline = time.monotonic() + 900
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if match := re.search(r"ready: the demo app is at (\S+)", line):
                app_url = match.group(1)
                break
            assert time.monotonic() < deadline, "".join(output)
        assert app_url, "".join(output)
        assert app_url == f"http://admin-demo.localhost:{port}"
        page = httpx.get(app_url, trust_env=False, timeout=30)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        token = (data_dir / "admin-token").read_text().strip()
        assert any(str(data_dir / "admin-token") in line for line in output), "where the token is"
        assert not [line for line in output if token in line], "the admin token itself is never printed"
        for log in (data_dir / "logs" / "processes").glob("*.log"):
            assert token not in log.read_text(errors="replace"), log
        info = httpx.get(f"http://127.0.0.1:{port}/api/spaces/admin/demo", trust_env=False).json()
        assert info["runtime"]["stage"] == "RUNNING"

        # A process killed outright starts again: the hub answers within seconds.
        for name in ("proxy", "controller"):
            killed = child_pid(process.pid, f"spacehub.cli {name}")
            os.kill(killed, signal.SIGKILL)
            wait_until(
                lambda: answers(f"http://127.0.0.1:{port}/api/spaces/admin/demo"),
                timeout=10,
                what=f"the hub to answer again after its {name} was killed",
            )
            assert child_pid(process.pid, f"spacehub.cli {name}") != killed
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0
    # Apps survive a restart of the platform's processes; only the processes stop.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False)
