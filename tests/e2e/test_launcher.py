"""`spacehub up` (what `make up` runs): the whole platform and a demo space a browser can open."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import docker
import httpx
import pytest

from spacehub.agent.network import remove_app_network
from tests.utils.platform import free_port_pair


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
        assert any(token in line for line in output), "the generated admin token is printed"
        info = httpx.get(f"http://127.0.0.1:{port}/api/spaces/admin/demo", trust_env=False).json()
        assert info["runtime"]["stage"] == "RUNNING"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == 0
    # Apps survive a restart of the platform's processes; only the processes stop.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False)
