"""`spacehub up`: the whole platform on one machine — Redis (unless one is configured), the
controller, the edge proxy and an agent — plus a demo space, until interrupted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

from spacehub.config import Settings, read_or_create_secret
from spacehub.db.migrate import upgrade

DEMO_SPACE = "demo"
RESTART_LIMIT = 5


def say(message: str) -> None:
    """Print a line of the launcher's own output."""
    print(f"spacehub | {message}", flush=True)


class Platform:
    """The child processes of `spacehub up`, restarted if they die."""

    def __init__(self, settings: Settings, env: dict[str, str]):
        self.settings = settings
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}
        self.restarts: dict[str, int] = {}
        self.log_dir = settings.resolved_data_dir / "logs" / "processes"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str]) -> None:
        """Start a child process in a session of its own, its output appended to its log file."""
        log = (self.log_dir / f"{name}.log").open("ab")
        self.children[name] = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.commands[name] = command

    def check(self) -> None:
        """Restart the children that exited; exit when one keeps exiting (more than RESTART_LIMIT times)."""
        for name, child in list(self.children.items()):
            if child.poll() is None:
                continue
            count = self.restarts.get(name, 0) + 1
            self.restarts[name] = count
            if count > RESTART_LIMIT:
                raise SystemExit(f"{name} keeps exiting; see {self.log_dir / (name + '.log')}")
            say(
                f"{name} exited with {child.returncode}; restarting it (see {self.log_dir / (name + '.log')})"
            )
            self.start(name, self.commands[name])

    def stop(self) -> None:
        """SIGTERM every child, then kill those that have not exited within 20 seconds."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()


def ensure_redis(settings: Settings, platform: Platform) -> str:
    """The Redis URL to use: the configured one, or a private redis-server on a socket, started if need be."""
    if settings.redis_url:
        redis.Redis.from_url(settings.redis_url).ping()
        return settings.redis_url
    socket = settings.resolved_data_dir / "redis.sock"
    url = f"unix://{socket}"
    try:
        redis.Redis.from_url(url).ping()
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
            redis.Redis.from_url(url).ping()
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
        remote = hub.replace("://", f"://admin:{token}@", 1) + f"/spaces/admin/{DEMO_SPACE}"
        subprocess.run(
            [*git, "push", "-q", remote, "main"], check=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        )


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
        say(f"admin: user `admin`, token {admin_token} (log in to the web UI with it)")
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
