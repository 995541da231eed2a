"""Faults of the platform's own processes under load: `spacehub up` with its demo space, a steady
load of visitors on the hub's API and on the demo app through the edge, then a SIGKILL of each
supervised process in turn (Redis, controller, edge, agent). For each: the requests that failed,
how long until both answered again, and whether anything durable was lost (the demo still runs,
its repository and settings intact). Then, with a build under way (a Dockerfile space whose build
takes 15 s), a SIGKILL of the job process running it, and of the RQ worker above that: the build
must be retried and the space run the pushed commit, never showing an error stage. The peer is
systemd as `deploy/systemd/` configures it (`Restart=always`, `RestartSec=2`): a restart no sooner
than 2 s after the death.

    PYTHONPATH=. .venv/bin/python bench/faults.py
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import docker
import httpx
from huggingface_hub import CommitOperationAdd, HfApi
from tests.utils.platform import free_port_pair

from spacehub.agent.network import remove_app_network

VISITORS = 4
PROCESSES = (("redis", "redis-server"), ("controller", "spacehub.cli controller"),
             ("edge", "spacehub.cli proxy"), ("agent", "spacehub.cli agent"))  # fmt: skip
SYSTEMD_RESTART_SEC = 2.0
ERROR_STAGES = {"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"}


class Load(threading.Thread):
    """One visitor: alternately the hub's API and the app, recording each answer's time and outcome."""

    def __init__(self, urls: list[str]):
        super().__init__(daemon=True)
        self.urls = urls
        self.stopped = threading.Event()
        self.results: list[tuple[float, str, bool]] = []

    def run(self) -> None:
        with httpx.Client(trust_env=False, timeout=10) as client:
            while not self.stopped.is_set():
                for url in self.urls:
                    try:
                        ok = client.get(url).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    self.results.append((time.monotonic(), url, ok))


def child_pid(parent: int, command: str) -> int | None:
    """The pid of `parent`'s child whose command line contains `command`."""
    listed = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    for pid in listed.split():
        try:
            if command in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                return int(pid)
        except OSError:
            continue
    return None


def drain(stream: IO[str]) -> None:
    """Read what the launcher prints, so that it never blocks on a full pipe."""
    for _line in stream:
        pass


def start_platform(data_dir: Path, port: int, token: str) -> tuple[subprocess.Popen[str], str]:
    """`spacehub up` in `data_dir` on `port`; the process and the demo app's URL once it runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEHUB_")}
    env.update(
        SPACEHUB_DATA_DIR=str(data_dir),
        SPACEHUB_PORT=str(port),
        SPACEHUB_NAMESPACE="faultbench",
        SPACEHUB_ADMIN_TOKEN=token,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "spacehub.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.search(r"ready: the demo app is at (\S+)", line):
            threading.Thread(target=drain, args=(process.stdout,), daemon=True).start()
            return process, match.group(1)
    raise SystemExit("spacehub up ended before the demo ran")


def kill_and_watch(parent: int, command: str, loads: list[Load]) -> tuple[int, int, float]:
    """SIGKILL the child running `command`; requests failed, requests made, seconds until every
    URL answered again."""
    pid = child_pid(parent, command)
    if pid is None:
        raise SystemExit(f"no process runs {command}")
    for load in loads:
        load.results.clear()
    time.sleep(1)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    time.sleep(15)
    results = [r for load in loads for r in load.results if r[0] >= killed_at]
    failed = [r for r in results if not r[2]]
    last_failure = max((r[0] for r in failed), default=killed_at)
    return len(failed), len(results), last_failure - killed_at


def slow_build() -> dict[str, bytes]:
    """A Dockerfile app whose build takes 15 s every time (a fresh nonce defeats the layer cache)."""
    return {
        "README.md": b"---\nsdk: docker\napp_port: 8080\n---\n",
        "Dockerfile": f"""FROM python:3.11-slim
RUN echo {secrets.token_hex(8)} && sleep 15
RUN useradd -m -u 1000 user
USER user
CMD ["python", "-m", "http.server", "8080"]
""".encode(),
    }


def build_process(tag_part: str) -> int | None:
    """The pid of the `docker build` whose tag names the space, if one runs."""
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and " build " in command and tag_part in command:
            return int(proc.name)
    return None


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def kill_during_build(api: HfApi, space: str, instance: str, generations: int) -> tuple[float, set[str]]:
    """Push a slow build, SIGKILL the process `generations` above the `docker build` (1: the job
    process, 2: its worker) once it runs; seconds until the space runs the pushed commit, and the
    error stages it showed meanwhile."""
    sha = api.create_commit(
        space,
        repo_type="space",
        operations=[CommitOperationAdd(path, content) for path, content in slow_build().items()],
        commit_message="slow build",
    ).oid
    tag_part = f"spacehub/app-{instance}-{api.space_info(space)._id}:"
    deadline = time.monotonic() + 300
    while (builder := build_process(tag_part)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"the build of {space} never started")
        time.sleep(0.2)
    victim = builder
    for _ in range(generations):
        victim = parent_of(victim)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    seen: set[str] = set()
    while time.monotonic() < killed_at + 600:
        info = api.space_info(space)
        stage = info.runtime.stage if info.runtime else ""
        seen.add(stage)
        if stage == "RUNNING" and info.sha == sha:
            return time.monotonic() - killed_at, seen & ERROR_STAGES
        time.sleep(0.5)
    raise SystemExit(f"{space} did not run its commit within 10 min after the kill: {seen}")


def main() -> None:
    """Run the platform, kill each process in turn under load, print one table."""
    data_dir = Path(tempfile.mkdtemp(prefix="spacehub-faults-")) / "data"
    port = free_port_pair()
    token = secrets.token_urlsafe(24)
    process, app_url = start_platform(data_dir, port, token)
    hub = f"http://127.0.0.1:{port}"
    api = HfApi(endpoint=hub, token=token)
    instance = (data_dir / "instance-id").read_text().strip()
    rows = []
    builds = []
    try:
        loads = [Load([f"{hub}/api/spaces/admin/demo", f"{app_url}/config"]) for _ in range(VISITORS)]
        for load in loads:
            load.start()
        for name, command in PROCESSES:
            failed, made, recovered = kill_and_watch(process.pid, command, loads)
            rows.append((name, failed, made, recovered))
        space = api.create_repo(
            f"admin/slow-{secrets.token_hex(3)}", repo_type="space", space_sdk="docker"
        ).repo_id
        for name, generations in (("job process", 1), ("worker", 2)):
            builds.append((name, *kill_during_build(api, space, instance, generations)))
        for load in loads:
            load.stopped.set()
        info = httpx.get(f"{hub}/api/spaces/admin/demo", trust_env=False, timeout=10).json()
        intact = info["runtime"]["stage"] == "RUNNING" and bool(info["sha"])
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"label": f"spacehub.instance={instance}"}):
            container.remove(force=True)
        remove_app_network(client, "faultbench-apps")
    print(f"\n{VISITORS} visitors, each alternating the hub's API and the demo app through the edge")
    print(f"{'killed':<12} {'failed':>7} {'of':>7} {'recovered after':>16}")
    for name, failed, made, recovered in rows:
        print(f"{name:<12} {failed:>7} {made:>7} {recovered:>14.2f} s")
    print(f"nothing durable lost (the demo runs at its commit): {'yes' if intact else 'NO'}")
    print("\na SIGKILL during a 15 s build (the build is retried; the space must never show an error)")
    for name, took, errors in builds:
        print(
            f"{name:<12} the pushed commit ran {took:6.1f} s after the kill; error stages: {errors or 'none'}"
        )
    print(f"peer: systemd with Restart=always, RestartSec={SYSTEMD_RESTART_SEC:g} (deploy/systemd): "
          f"a process is back no sooner than {SYSTEMD_RESTART_SEC:g} s after it died")  # fmt: skip


if __name__ == "__main__":
    main()
