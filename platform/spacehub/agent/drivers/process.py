"""The process driver: each app in a virtualenv of its own, run as a subprocess of the host.

For hosts without a Docker engine (a GPU box, a laptop). It does NOT isolate untrusted code: apps
run as the agent's user, see the host's files and network, and get no CPU or memory limits. Use
it only for apps you trust. Gradio and Streamlit apps on the host's Python are supported;
Dockerfile apps and packages.txt need the Docker driver."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

from spacehub.agent.drivers.base import (
    DriverHost,
    Instance,
    InstanceState,
    LaunchSpec,
    RuntimeDriver,
    Usage,
    builds_to_keep,
)
from spacehub.agent.drivers.cgroups import process_group_usage
from spacehub.build.errors import BuildFailed
from spacehub.build.logsink import LogSink
from spacehub.build.runtimes import SDK_PACKAGES, definition_hash, python_minor, sdk_requirement
from spacehub.queue.spec import DeploySpec

log = logging.getLogger(__name__)


def _free_port(address: str) -> int:
    with closing(socket.socket()) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _process_state(pid: int) -> str | None:
    """The state letter of a live process (R, S, T for stopped...); None when it is gone or a zombie
    (dead, not yet reaped by its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    letter = stat.rsplit(")", 1)[1].split()[0]
    return None if letter in ("Z", "X") else letter


def _alive(pid: int) -> bool:
    return _process_state(pid) is not None


# What an app process inherits from the host: nothing of the agent's own environment (which holds
# the platform's secrets), only what a program needs to run.
INHERITED_VARIABLES = (
    "LANG",
    "LC_ALL",
    "TZ",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
)


def app_process_environment(app_env: dict[str, str], build: Path, address: str, port: int) -> dict[str, str]:
    """The environment of an app process: the platform's variables for the app, its own venv first
    on PATH, a home of its own, and the address it must listen on."""
    env = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    env.update(app_env)
    env.update(
        PATH=f"{build / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        HOME=str(build / "home"),
        VIRTUAL_ENV=str(build / "venv"),
        PYTHONUNBUFFERED="1",
        GRADIO_SERVER_NAME=address,
        GRADIO_SERVER_PORT=str(port),
        STREAMLIT_SERVER_ADDRESS=address,
        STREAMLIT_SERVER_PORT=str(port),
    )
    return env


class ProcessDriver(RuntimeDriver):
    def __init__(self, agent: DriverHost):
        self.agent = agent
        self.settings = agent.settings
        self.root = agent.settings.agent_dir / "process" / agent.host_id
        for folder in ("runtimes", "builds", "instances", "logs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    # Build --------------------------------------------------------------------------------------

    def _pip(self, venv: Path, args: list[str], log_writer: LogSink, constraint: Path | None = None) -> None:
        # The host's pip and network settings, never the platform's own (SPACEHUB_*: its secrets).
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEHUB_")}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        if constraint is not None:
            env["PIP_CONSTRAINT"] = str(constraint)
        if self.settings.pip_index_url:
            env["PIP_INDEX_URL"] = self.settings.pip_index_url
        if self.settings.pip_extra_index_url:
            env["PIP_EXTRA_INDEX_URL"] = self.settings.pip_extra_index_url
        if self.settings.pip_find_links:
            env["PIP_FIND_LINKS"] = str(self.settings.pip_find_links)
        proc = subprocess.Popen(
            [str(venv / "bin" / "python"), "-m", "pip", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        assert proc.stdout is not None
        tail: list[str] = []
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            log_writer.write(line)
            tail = [*tail[-30:], line]
        if proc.wait(timeout=self.settings.build_timeout) != 0:
            raise BuildFailed(f"pip {' '.join(args[:2])} failed:\n" + "\n".join(tail))

    def _runtime(self, spec: DeploySpec, log_writer: LogSink) -> tuple[Path, Path]:
        """A virtualenv with the pinned SDK, shared by every build of that SDK version."""
        minor = python_minor(spec.python_version or f"{sys.version_info.major}.{sys.version_info.minor}")
        host = f"{sys.version_info.major}.{sys.version_info.minor}"
        if minor != host:
            raise BuildFailed(
                f"this host runs Python {host}; the process driver cannot provide Python {minor}"
            )
        version = spec.sdk_version or (
            self.settings.default_gradio_version
            if spec.sdk == "gradio"
            else self.settings.default_streamlit_version
        )
        requirement = sdk_requirement(spec.sdk, version)
        runtime = self.root / "runtimes" / f"py{minor}-{spec.sdk}-{version}-{definition_hash(requirement)}"
        constraint = runtime / "constraints.txt"
        if not (runtime / "ready").exists():
            log_writer.write(f"==> Installing {spec.sdk} {version} for Python {minor} (once per host)")
            shutil.rmtree(runtime, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(runtime / "venv")], check=True)
            constraint.write_text(sdk_requirement(spec.sdk, version, extras=False) + "\n")
            self._pip(
                runtime / "venv",
                ["install", requirement, "huggingface_hub"],
                log_writer,
            )
            (runtime / "ready").touch()
        return runtime / "venv", constraint

    def _build_dir(self, space_id: int, build_id: int) -> Path:
        return self.root / "builds" / str(space_id) / f"b{build_id}"

    def build(self, spec: DeploySpec, source: Path, log_writer: LogSink) -> str:
        """Process: a virtualenv of the app's requirements over the SDK's shared one; returns its folder."""
        if spec.sdk not in SDK_PACKAGES:
            raise BuildFailed(
                f"the process driver runs Gradio and Streamlit apps, not `sdk: {spec.sdk}`; "
                "this space needs a host with the Docker driver"
            )
        if (source / "packages.txt").exists():
            raise BuildFailed(
                "packages.txt needs the Docker driver: the process driver installs no system packages"
            )
        base, constraint = self._runtime(spec, log_writer)
        target = self._build_dir(spec.space_id, spec.build_id)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        log_writer.write("==> Creating the app's virtualenv over the SDK's")
        subprocess.run([sys.executable, "-m", "venv", str(target / "venv")], check=True)
        # The SDK's virtualenv comes after the app's own on sys.path.
        for site in (target / "venv" / "lib").glob("python*/site-packages"):
            base_site = next((base / "lib").glob("python*/site-packages"))
            (site / "spacehub-sdk.pth").write_text(f"{base_site}\n")
        for name in ("pre-requirements.txt", "requirements.txt"):
            if (source / name).exists():
                log_writer.write(f"==> pip install -r {name}")
                self._pip(target / "venv", ["install", "-r", str(source / name)], log_writer, constraint)
        shutil.copytree(source, target / "app")
        (target / "launch.json").write_text(json.dumps({"sdk": spec.sdk, "app_file": spec.app_file}))
        (target / "ready").touch()
        return str(target)

    def find_artifact(self, spec: DeploySpec) -> str | None:
        """Process: the build's folder, if its build finished."""
        target = self._build_dir(spec.space_id, spec.build_id)
        return str(target) if (target / "ready").exists() else None

    # Run ----------------------------------------------------------------------------------------

    def _state_path(self, instance_id: str) -> Path:
        return self.root / "instances" / f"{instance_id}.json"

    def start(self, launch: LaunchSpec) -> Instance:
        """Process: run the app under its supervisor, on a free port of the address the edge
        reaches this host at (`advertise_address`: loopback when the edge runs here)."""
        build = Path(launch.artifact)
        address = self.settings.advertise_address
        port = _free_port(address)
        instance_id = f"{launch.subdomain}-b{launch.build_id}-{int(time.time() * 1000)}"
        home = build / "home"
        home.mkdir(exist_ok=True)
        how = json.loads((build / "launch.json").read_text())
        python = str(build / "venv" / "bin" / "python")
        state = {
            "id": instance_id,
            "address": address,
            "port": port,
            "space": launch.space_id,
            "build": launch.build_id,
            "subdomain": launch.subdomain,
            "log": str(self.root / "logs" / f"{instance_id}.log"),
            "exit": str(self.root / "logs" / f"{instance_id}.exit"),
            "cwd": str(build / "app"),
            "command": (
                [python, "-m", "streamlit", "run", how["app_file"]]
                if how["sdk"] == "streamlit"
                else [python, how["app_file"]]
            ),
            "env": app_process_environment(launch.env, build, address, port),
            "labels": {**launch.labels(), "spacehub.host": self.settings.host_id},
        }
        self._spawn(state)
        instance = self.poll(instance_id)
        assert instance is not None
        return instance

    def _spawn(self, state: dict[str, Any]) -> None:
        """Run the app under its supervisor, in a session of its own, and record it."""
        Path(state["exit"]).unlink(missing_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "spacehub.agent.drivers.supervise", state["log"], state["exit"], "--"]
            + state["command"],
            cwd=state["cwd"],
            env=state["env"],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        state.update(pid=process.pid, started_at=time.time(), halted=False)
        path = self._state_path(state["id"])
        path.touch(mode=0o600)  # it holds the app's secrets, as a container's config does
        path.write_text(json.dumps(state))

    def _state(self, instance_id: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self._state_path(instance_id).read_text()))
        except FileNotFoundError:
            return None

    def _signal(self, instance_id: str, signum: int) -> None:
        state = self._state(instance_id)
        if state is not None and _alive(int(state["pid"])):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(state["pid"]), signum)

    def freeze(self, instance_id: str) -> None:
        """Process: SIGSTOP to the app's process group."""
        self._signal(instance_id, signal.SIGSTOP)

    def thaw(self, instance_id: str) -> None:
        """Process: SIGCONT to the app's process group."""
        self._signal(instance_id, signal.SIGCONT)

    def halt(self, instance_id: str, timeout: float = 10.0) -> None:
        """Process: SIGTERM to the process group, SIGKILL after `timeout`; the state file stays."""
        state = self._state(instance_id)
        if state is None:
            return
        pid = int(state["pid"])
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)  # a stopped process handles SIGTERM only once it runs
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        state["halted"] = True
        self._state_path(instance_id).write_text(json.dumps(state))

    def resume(self, instance_id: str) -> Instance | None:
        """Process: spawn the app again if its process is gone, else let it run."""
        state = self._state(instance_id)
        if state is None:
            return None
        if not _alive(int(state["pid"])):
            self._spawn(state)
        else:
            self.thaw(instance_id)
        return self.poll(instance_id)

    def stop(self, instance_id: str, timeout: float = 10.0) -> None:
        """Process: halt the app, then delete its state and exit files."""
        state = self._state(instance_id)
        if state is None:
            return
        self.halt(instance_id, timeout)
        self._state_path(instance_id).unlink(missing_ok=True)
        Path(state["exit"]).unlink(missing_ok=True)

    def poll(self, instance_id: str) -> Instance | None:
        """Process: read from the state file, the process's /proc entry and the exit file."""
        state = self._state(instance_id)
        if state is None:
            return None
        exit_file = Path(state["exit"])
        process_state = _process_state(int(state["pid"]))
        exited = exit_file.exists() or process_state is None
        code = int(exit_file.read_text() or "-1") if exit_file.exists() else (-1 if exited else None)
        if exited:
            current = InstanceState.EXITED
        else:
            current = InstanceState.FROZEN if process_state == "T" else InstanceState.RUNNING
        return Instance(
            id=state["id"],
            space_id=int(state["space"]),
            build_id=int(state["build"]),
            subdomain=state["subdomain"],
            state=current,
            upstream=f"{state.get('address', '127.0.0.1')}:{state['port']}",
            exit_code=code,
            started_at=str(state["started_at"]),
            labels=dict(state["labels"]),
        )

    def logs(
        self, instance_id: str, *, follow: bool, since: float | None = None, tail: int | None = None
    ) -> Iterator[tuple[str, str]]:
        """Process: lines of the supervisor's log file; following ends when the app exits."""
        path = self._state_path(instance_id)
        if not path.exists():
            return
        state = json.loads(path.read_text())
        log_path = Path(state["log"])
        if not log_path.exists():
            log_path.touch()
        with log_path.open(encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()
            chosen = lines[-tail:] if tail else lines
            for line in chosen:
                stamp, _, text = line.rstrip("\n").partition(" ")
                if since is None or _epoch(stamp) >= since:
                    yield stamp, text
            while follow:
                line = handle.readline()
                if line:
                    stamp, _, text = line.rstrip("\n").partition(" ")
                    yield stamp, text
                    continue
                current = self.poll(instance_id)
                if current is None or current.state == InstanceState.EXITED:
                    for rest in handle.readlines():
                        stamp, _, text = rest.rstrip("\n").partition(" ")
                        yield stamp, text
                    return
                time.sleep(0.2)

    def usage(self, instance_id: str) -> Usage | None:
        """Process: what the app's process group uses."""
        state = self._state(instance_id)
        return process_group_usage(int(state["pid"])) if state is not None else None

    def list(self) -> list[Instance]:
        """Process: every instance with a state file."""
        instances = []
        for path in (self.root / "instances").glob("*.json"):
            instance = self.poll(path.stem)
            if instance is not None:
                instances.append(instance)
        return instances

    def prune(self, keep: dict[int, set[int]], cache_limit: str) -> None:
        """Process: delete the build folders no space wants; there is no build cache to bound."""
        for space_dir in (self.root / "builds").iterdir():
            if not space_dir.name.isdigit():
                continue
            builds = sorted(int(p.name[1:]) for p in space_dir.iterdir() if p.name[1:].isdigit())
            wanted = builds_to_keep(builds, keep.get(int(space_dir.name), set()))
            for build_id in builds:
                if build_id not in wanted:
                    shutil.rmtree(space_dir / f"b{build_id}", ignore_errors=True)

    def disk_usage(self) -> dict[str, int]:
        """Process: bytes in the SDK runtimes and in the builds."""

        def size(path: Path) -> int:
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())

        return {"runtimes": size(self.root / "runtimes"), "builds": size(self.root / "builds")}


def _epoch(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
