"""`spacehub up`: the whole platform on one machine — Redis (unless one is configured), the
controller, the edge proxy and an agent — plus a demo space, until interrupted."""

from __future__ import annotations

import base64
import logging
import logging.handlers
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import redis

from spacehub.config import Settings, read_or_create_secret
from spacehub.db.migrate import upgrade
from spacehub.state.connection import connect

DEMO_SPACE = "demo"
BACKOFF = 0.5  # seconds before a process that died starts again; doubled at each death in a row
MAX_BACKOFF = 60.0
STABLE_SECONDS = 120.0  # a process up this long starts its count of deaths afresh
LOG_BYTES = 20 * 1024 * 1024
LOG_BACKUPS = 3


def say(message: str) -> None:
    """Print a line of the launcher's own output."""
    print(f"spacehub | {message}", flush=True)


@dataclass
class Child:
    """One supervised process: its command, when it may start again, how often it died lately."""

    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    next_start: float = 0.0
    log: RotatingLog | None = None


class RotatingLog:
    """A process's output copied into `path`, which is rotated (`.1`, `.2`...) past `max_bytes`,
    so that a chatty or failing process never fills the disk."""

    def __init__(self, path: Path, max_bytes: int = LOG_BYTES, backups: int = LOG_BACKUPS):
        self.handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups)
        self.handler.setFormatter(logging.Formatter("%(message)s"))

    def follow(self, stream: IO[bytes]) -> threading.Thread:
        """Copy `stream` line by line until it closes, in a thread of its own."""

        def copy() -> None:
            for raw in stream:
                record = logging.makeLogRecord({"msg": raw.decode(errors="replace").rstrip("\n")})
                self.handler.emit(record)

        thread = threading.Thread(target=copy, daemon=True)
        thread.start()
        return thread


class Platform:
    """The child processes of `spacehub up`. One that dies starts again after a delay that grows
    with its recent deaths (0.5 s, 1 s, 2 s... up to a minute) and shrinks again once it has run
    for a while; none is ever given up."""

    def __init__(self, settings: Settings, env: dict[str, str], clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.env = env
        self.clock = clock
        self.children: dict[str, Child] = {}
        self.log_dir = settings.resolved_data_dir / "logs" / "processes"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str]) -> None:
        """Start `name` (and supervise it from now on)."""
        child = self.children.setdefault(name, Child(command))
        child.log = child.log or RotatingLog(self.log_dir / f"{name}.log")
        child.process = subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        assert child.process.stdout is not None
        child.log.follow(child.process.stdout)
        child.started_at = self.clock()

    def check(self) -> None:
        """Start again, when its delay has passed, every child that died."""
        now = self.clock()
        for name, child in self.children.items():
            if child.process is not None and child.process.poll() is None:
                if now - child.started_at > STABLE_SECONDS:
                    child.failures = 0
                continue
            if child.process is not None:  # it just died: decide when it starts again
                child.failures += 1
                delay = min(MAX_BACKOFF, BACKOFF * 2 ** (child.failures - 1))
                child.next_start = now + delay
                say(
                    f"{name} exited with {child.process.returncode}; starting it again in {delay:g} s "
                    f"(see {self.log_dir / (name + '.log')})"
                )
                child.process = None
            if now >= child.next_start:
                self.start(name, child.command)

    def stop(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL after 20 s)."""
        running = [
            c.process for c in self.children.values() if c.process is not None and c.process.poll() is None
        ]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


def ensure_redis(settings: Settings, platform: Platform) -> str:
    """The Redis URL to use: the configured one, or a private redis-server on a socket, started if need be."""
    if settings.redis_url:
        connect(settings.redis_url).ping()
        return settings.redis_url
    socket = settings.resolved_data_dir / "redis.sock"
    url = f"unix://{socket}"
    try:
        connect(url).ping()
        return url
    except redis.ConnectionError:
        pass
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit(
            "redis-server is not installed (apt-get install redis-server) and SPACEHUB_REDIS_URL is unset"
        )
    platform.start(
        "redis",
        [
            server,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(settings.resolved_data_dir),
            "--dbfilename",
            "redis.rdb",
            "--save",
            "60 1",
        ],
    )
    for _ in range(100):
        try:
            connect(url).ping()
            return url
        except redis.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("redis-server did not start; see " + str(platform.log_dir / "redis.log"))


def wait_for(url: str, what: str, timeout: float = 60) -> None:
    """Wait until `url` answers without a server error; exit when the `what` has not started in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the {what} did not start within {timeout:.0f} s")


def create_demo(hub: str, token: str, templates_dir: Path) -> None:
    """Create admin/demo from the Gradio starter, with git, as a user would."""
    headers = {"Authorization": f"Bearer {token}"}
    info = httpx.get(f"{hub}/api/spaces/admin/{DEMO_SPACE}", headers=headers, trust_env=False)
    if info.status_code == 200 and info.json().get("sha"):
        return
    if info.status_code == 404:
        created = httpx.post(
            f"{hub}/api/repos/create",
            headers=headers,
            trust_env=False,
            json={"name": DEMO_SPACE, "type": "space", "sdk": "gradio"},
        )
        created.raise_for_status()
    with tempfile.TemporaryDirectory(prefix="spacehub-demo-") as tmp:
        work = Path(tmp) / "demo"
        shutil.copytree(templates_dir / "gradio" / "starter", work)
        git = ["git", "-C", str(work), "-c", "user.name=spacehub", "-c", "user.email=spacehub@localhost"]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "Demo space from the Gradio starter"], check=True)
        # The token goes in a header given through the environment: never in a URL, a command
        # line or a git config file that others could read.
        credentials = base64.b64encode(f"admin:{token}".encode()).decode()
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {credentials}",
        }
        subprocess.run([*git, "push", "-q", f"{hub}/spaces/admin/{DEMO_SPACE}", "main"], check=True, env=env)


def wait_for_demo(hub: str, token: str, timeout: float = 1800) -> dict[str, object]:
    """The demo space's runtime once it runs, printing each new stage; exit if it fails or takes too long."""
    headers = {"Authorization": f"Bearer {token}"}
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runtime = httpx.get(
            f"{hub}/api/spaces/admin/{DEMO_SPACE}/runtime", headers=headers, trust_env=False
        ).json()
        stage = runtime["stage"]
        if (stage, runtime.get("message")) != last:
            say(f"demo space: {stage} {runtime.get('message') or ''}".rstrip())
            last = (stage, runtime.get("message"))
        if stage == "RUNNING":
            return runtime
        if stage in ("BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"):
            raise SystemExit(f"the demo space failed: {runtime.get('errorMessage')}")
        time.sleep(1)
    raise SystemExit("the demo space did not start in time")


def run_platform(settings: Settings, demo: bool = True) -> int:
    """Run the whole platform on this machine until interrupted (creating the demo space with `demo`)."""
    data_dir = settings.resolved_data_dir
    admin_token = (
        settings.admin_token.get_secret_value()
        if settings.admin_token
        else read_or_create_secret(data_dir / "admin-token", "shub_" + os.urandom(24).hex())
    )
    env = {
        **os.environ,
        "SPACEHUB_DATA_DIR": str(data_dir),
        "SPACEHUB_ADMIN_TOKEN": admin_token,
        "SPACEHUB_INTERNAL_TOKEN": settings.resolved_internal_token,
    }
    platform = Platform(settings, env)
    stop = {"requested": False}

    def request_stop(_signum: int, _frame: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        env["SPACEHUB_REDIS_URL"] = ensure_redis(settings, platform)
        upgrade(settings.resolved_database_url)
        spacehub = [sys.executable, "-m", "spacehub.cli"]
        platform.start("controller", [*spacehub, "controller"])
        platform.start("proxy", [*spacehub, "proxy"])
        hub = f"http://127.0.0.1:{settings.port}"
        wait_for(f"http://127.0.0.1:{settings.resolved_controller_port}/healthz", "controller")
        wait_for(f"{hub}/healthz", "edge proxy")
        platform.start("agent", [*spacehub, "agent"])
        say(f"hub:   {settings.resolved_public_url}   (logs in {platform.log_dir})")
        where = "in SPACEHUB_ADMIN_TOKEN" if settings.admin_token else f"in {data_dir / 'admin-token'}"
        say(f"admin: user `admin`; its token is {where} (log in to the web UI with it)")
        if demo:
            say("creating the demo space (the first build prepares base images: a few minutes)")
            create_demo(hub, admin_token, settings.templates_dir)
            runtime = wait_for_demo(hub, admin_token)
            app = httpx.get(f"{hub}/api/spaces/admin/{DEMO_SPACE}", trust_env=False).json().get("host")
            say(f"ready: the demo app is at {app}")
            page = f"{settings.resolved_public_url}/spaces/admin/{DEMO_SPACE}"
            say(f"       its page is {page} ({runtime['stage']})")
        else:
            say("ready")
        say("press Ctrl-C to stop (apps keep running and are picked up again on the next start)")
        while not stop["requested"]:
            platform.check()
            time.sleep(1)
        return 0
    finally:
        say("stopping")
        platform.stop()
