"""A real spacehub for tests: controller, proxy and (optionally) an agent as subprocesses, on free
ports, with their own data directory and Redis namespace, against the machine's Docker engine."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.utils.database import PostgresServer
from tests.utils.gitrepo import LocalRepo
from tests.utils.waiting import wait_until

TERMINAL_STAGES = {
    "RUNNING",
    "BUILD_ERROR",
    "RUNTIME_ERROR",
    "CONFIG_ERROR",
    "NO_APP_FILE",
    "PAUSED",
    "STOPPED",
    "SLEEPING",
}


def local_wheelhouse() -> Path | None:
    """pip's configured find-links folder, when it holds a torch wheel (as on these machines)."""
    candidates = [os.environ.get("PIP_FIND_LINKS", ""), "/opt/wheels"]
    for candidate in candidates:
        for entry in candidate.split():
            path = Path(entry.removeprefix("file://"))
            if path.is_dir() and any(path.glob("torch-*.whl")):
                return path
    return None


def free_port_pair() -> int:
    """A port p such that p and p + 1 are free (proxy and controller)."""
    for _ in range(100):
        with closing(socket.socket()) as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
        if port >= 65000:
            continue
        try:
            for candidate in (port, port + 1):
                with closing(socket.socket()) as probe:
                    probe.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


@dataclass
class Platform:
    data_dir: Path
    redis_url: str
    routing: str = "subdomain"
    with_agent: bool = True
    agent_flavors: str = "cpu-basic"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port_pair)
    admin_token: str = field(default_factory=lambda: "shub_admin_" + secrets.token_hex(16))
    namespace: str = field(default_factory=lambda: "t" + secrets.token_hex(4))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    agent_env: dict[str, dict[str, str]] = field(default_factory=dict)
    agent_netns: dict[str, str] = field(default_factory=dict)  # agents run in a network namespace
    repos: dict[str, LocalRepo] = field(default_factory=dict)
    database: PostgresServer | None = None  # None: SQLite in the data directory
    database_url: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.port + 1}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEHUB_")}
        env.update(
            SPACEHUB_DATA_DIR=str(self.data_dir),
            SPACEHUB_PORT=str(self.port),
            SPACEHUB_CONTROLLER_PORT=str(self.port + 1),
            SPACEHUB_REDIS_URL=self.redis_url,
            SPACEHUB_NAMESPACE=self.namespace,
            SPACEHUB_ADMIN_TOKEN=self.admin_token,
            SPACEHUB_INTERNAL_TOKEN="internal-" + self.namespace,
            SPACEHUB_ROUTING=self.routing,
            SPACEHUB_DRAIN_SECONDS="1",
            SPACEHUB_RECONCILE_INTERVAL="2",
            SPACEHUB_ROUTE_AUDIT_INTERVAL="2",
            SPACEHUB_HEARTBEAT_INTERVAL="2",
            PYTHONUNBUFFERED="1",
        )
        if self.database_url:
            env["SPACEHUB_DATABASE_URL"] = self.database_url
        wheelhouse = local_wheelhouse()
        if wheelhouse is not None:
            # Builds take torch from the machine's wheelhouse instead of download.pytorch.org.
            env.update(SPACEHUB_PIP_FIND_LINKS=str(wheelhouse), SPACEHUB_TORCH_CPU_INDEX_URL="")
        env.update(self.extra_env)
        return env

    # Processes ----------------------------------------------------------------------------------

    def start(self) -> Platform:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.database is not None and not self.database_url:
            self.database_url = self.database.create_database(self.namespace)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self._spawn("controller", "controller")
        self._spawn("proxy", "proxy")
        self._wait_http(f"{self.controller_url}/healthz")
        self._wait_http(f"{self.url}/healthz")
        if self.with_agent:
            self.start_agent("agent", host_id=f"host-{self.namespace}", flavors=self.agent_flavors)
        return self

    def start_agent(
        self,
        key: str,
        *,
        host_id: str,
        flavors: str,
        declared_capacity: bool = True,
        netns: str | None = None,
        **settings: str,
    ) -> None:
        """An agent for host `host_id` serving `flavors` (comma-separated); `settings` are extra
        SPACEHUB_ variables (lower-case names), e.g. agent_gpus='["0", "1"]'. Unless
        `declared_capacity` is False (the host offers what it has, as with `make up`), the host
        declares room for any number of test spaces. With `netns`, the agent runs in that network
        namespace (a host of its own: tests/utils/netns.py)."""
        env = {
            "SPACEHUB_HOST_ID": host_id,
            "SPACEHUB_AGENT_FLAVORS": json.dumps(flavors.split(",")),
        }
        if declared_capacity:
            env.update(SPACEHUB_AGENT_CPUS="1000", SPACEHUB_AGENT_MEMORY="16Ti")
        env.update({f"SPACEHUB_{name.upper()}": value for name, value in settings.items()})
        self.agent_env[key] = env
        if netns is not None:
            self.agent_netns[key] = netns
        self._spawn(key, "agent", env)
        self._wait_for_host(host_id)

    def _spawn(self, key: str, command: str, extra: dict[str, str] | None = None) -> None:
        log = (self.data_dir / "logs" / f"{key}.log").open("ab")
        netns = self.agent_netns.get(key)
        self.processes[key] = subprocess.Popen(
            [
                *(["ip", "netns", "exec", netns] if netns else []),
                sys.executable,
                "-m",
                "spacehub.cli",
                command,
            ],
            env={**self.env, **(extra or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_edge_replica(self, key: str, port: int, namespace: str | None = None) -> str:
        """Another edge proxy, on `port`, converging on the same Redis (on the route table of
        another `namespace`, where no controller removes what it does not know); its URL."""
        self._spawn(
            key, "proxy", {"SPACEHUB_PORT": str(port), "SPACEHUB_NAMESPACE": namespace or self.namespace}
        )
        url = f"http://127.0.0.1:{port}"
        self._wait_http(f"{url}/healthz")
        return url

    def start_controller_replica(self, key: str, port: int) -> str:
        """Another controller, on `port`, sharing the database, repositories and Redis; its URL."""
        self._spawn(key, "controller", {"SPACEHUB_CONTROLLER_PORT": str(port)})
        url = f"http://127.0.0.1:{port}"
        self._wait_http(f"{url}/healthz")
        return url

    def database_files(self) -> list[Path]:
        """The files the platform's database keeps its data in (with its write-ahead log)."""
        if self.database is not None:
            return self.database.files()
        return sorted(self.data_dir.glob("spacehub.db*"))

    def restart(self, key: str) -> None:
        self.stop_process(key)
        command = "agent" if key in self.agent_env else key
        self._spawn(key, command, self.agent_env.get(key))

    def stop_process(self, name: str, sig: int = 15) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()

    def _wait_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{url} did not come up; logs:\n{self.process_logs()}")

    def _wait_for_host(self, host_id: str, timeout: float = 60) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.exists(f"{self.namespace}:host:{host_id}"):
                return
            time.sleep(0.3)
        raise RuntimeError(f"the agent did not register; logs:\n{self.process_logs()}")

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_process(name)
        self.remove_containers()

    def instance_id(self) -> str | None:
        path = self.data_dir / "instance-id"
        return path.read_text().strip() if path.exists() else None

    def containers(self, all: bool = True) -> list[Any]:
        instance = self.instance_id()
        if instance is None:
            return []
        client = docker.from_env()
        return client.containers.list(all=all, filters={"label": f"spacehub.instance={instance}"})

    def remove_containers(self) -> None:
        """Remove every app this platform ran: containers, and the process driver's app processes
        (which outlive their agent on purpose, as containers do)."""
        for container in self.containers():
            container.remove(force=True)
        for state in self.data_dir.glob("agent/process/*/instances/*.json"):
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError, KeyError):
                os.killpg(int(json.loads(state.read_text())["pid"]), 9)
        if self.agent_env:
            from spacehub.agent.network import remove_app_network

            remove_app_network(docker.from_env(), f"{self.namespace}-apps")

    def process_logs(self, lines: int = 80) -> str:
        chunks = []
        for path in sorted((self.data_dir / "logs").glob("*.log")):
            text = path.read_text(errors="replace").splitlines()
            chunks.append(f"----- {path.name} -----\n" + "\n".join(text[-lines:]))
        return "\n".join(chunks)

    def save_artifacts(self, destination: Path) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        for path in (self.data_dir / "logs").glob("*.log"):
            shutil.copy(path, destination / path.name)

    # API helpers --------------------------------------------------------------------------------

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"} if token != "" else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def create_space(
        self,
        name: str,
        sdk: str = "gradio",
        *,
        owner: str | None = None,
        private: bool = False,
        hardware: str | None = None,
        token: str | None = None,
    ) -> str:
        payload: dict[str, Any] = {"name": name, "type": "space", "sdk": sdk, "private": private}
        if owner:
            payload["organization"] = owner
        if hardware:
            payload["hardware"] = hardware
        with self.client(token) as client:
            response = client.post("/api/repos/create", json=payload)
        response.raise_for_status()
        return str(response.json()["name"])

    def repo(self, space_id: str, token: str | None = None) -> LocalRepo:
        if space_id not in self.repos:
            self.repos[space_id] = LocalRepo.clone_or_init(
                self.data_dir.parent / "clones" / space_id.replace("/", "__"),
                f"{self.url}/spaces/{space_id}",
                token or self.admin_token,
            )
        return self.repos[space_id]

    def push(
        self,
        space_id: str,
        files: dict[str, str | bytes],
        *,
        message: str = "update",
        delete: tuple[str, ...] = (),
        token: str | None = None,
    ) -> str:
        repo = self.repo(space_id, token)
        return repo.commit_and_push(files, message=message, delete=delete)

    def runtime(self, space_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"/api/spaces/{space_id}/runtime")
        response.raise_for_status()
        return dict(response.json())

    def info(self, space_id: str, token: str | None = None) -> dict[str, Any]:
        with self.client(token) as client:
            response = client.get(f"/api/spaces/{space_id}")
        response.raise_for_status()
        return dict(response.json())

    def wait_stage(self, space_id: str, stages: set[str] | str, timeout: float = 900) -> dict[str, Any]:
        """Poll until the space reaches one of `stages`; fail early on another terminal stage."""
        wanted = {stages} if isinstance(stages, str) else stages
        deadline = time.monotonic() + timeout
        runtime: dict[str, Any] = {}
        while time.monotonic() < deadline:
            runtime = self.runtime(space_id)
            if runtime["stage"] in wanted:
                return runtime
            if runtime["stage"] in TERMINAL_STAGES - wanted and runtime["stage"] != "RUNNING":
                raise AssertionError(
                    f"{space_id} reached {runtime['stage']} instead of {wanted}: "
                    f"{runtime.get('errorMessage')}\n"
                    f"build log:\n{self.logs(space_id, 'build')[-3000:]}"
                )
            time.sleep(0.5)
        raise AssertionError(
            f"{space_id} still {runtime.get('stage')} after {timeout} s\n{self.process_logs()}"
        )

    def logs(
        self, space_id: str, kind: str = "build", token: str | None = None, read_timeout: float = 3.0
    ) -> str:
        """The log as the Hub's SSE endpoint serves it (read until it ends or goes quiet)."""
        lines = []
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        try:
            with httpx.stream(
                "GET",
                f"{self.url}/api/spaces/{space_id}/logs/{kind}",
                headers=headers,
                timeout=httpx.Timeout(10, read=read_timeout),
                trust_env=False,
            ) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        lines.append(json.loads(line[6:])["data"])
        except httpx.ReadTimeout:
            pass
        return "".join(lines)

    def wait_for_reports_applied(self, timeout: float = 30) -> None:
        """Wait until the controller has applied every report (agents', the edge's wake requests)
        sent so far: for checks that something did not happen."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        stream = f"{self.namespace}:events"

        def applied() -> bool:
            groups = client.xinfo_groups(stream) if client.exists(stream) else []
            return all(g["lag"] == 0 and g["pending"] == 0 for g in groups)

        wait_until(applied, timeout=timeout, what="the controller to apply every report")

    def instances_of(self, space_id: str) -> int:
        """How many apps of a space the hosts run (whatever their driver), from the admin API."""
        with self.client() as client:
            hosts = client.get("/api/admin/hosts").json()
        return sum(1 for host in hosts for a in host["allocations"] if a["space"] == space_id)

    def app_url(self, space_id: str) -> str:
        return str(self.info(space_id)["host"])

    def live_containers(self, space_id: str) -> list[Any]:
        """The containers of a space that run or are frozen, from Docker itself."""
        subdomain = self.info(space_id)["subdomain"]
        return [c for c in self.containers(all=False) if c.labels.get("spacehub.subdomain") == subdomain]

    def container(self, space_id: str) -> Any:
        """The one container that serves a space (running or frozen)."""
        found = self.live_containers(space_id)
        assert len(found) == 1, f"{space_id} has {len(found)} live containers: {found}"
        return found[0]
