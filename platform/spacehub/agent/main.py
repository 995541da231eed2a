"""`spacehub agent`: the monitor in this process, job workers in child processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from spacehub.agent.context import AgentContext
from spacehub.agent.monitor import Monitor
from spacehub.agent.network import FirewallUnavailable
from spacehub.config import Settings
from spacehub.state.connection import connect

log = logging.getLogger(__name__)


def served_flavors(agent: AgentContext) -> list[str]:
    """The flavors this agent serves: SPACEHUB_AGENT_FLAVORS, else every CPU flavor."""
    configured = agent.settings.agent_flavors
    if configured:
        unknown = [name for name in configured if name not in agent.flavors]
        if unknown:
            raise SystemExit(f"SPACEHUB_AGENT_FLAVORS names unknown flavors: {', '.join(unknown)}")
        return configured
    return [name for name, flavor in agent.flavors.items() if not flavor.is_gpu]


def run_agent(settings: Settings) -> None:
    """Run the agent until SIGTERM or SIGINT: set the host up, monitor it, and keep the job workers alive."""
    agent = AgentContext(settings=settings, redis=connect(settings.resolved_redis_url))
    flavors = served_flavors(agent)
    log.info("agent %s (installation %s) serves %s", agent.host_id, agent.instance_id, ", ".join(flavors))
    try:
        agent.driver.prepare()
    except FirewallUnavailable as exc:
        raise SystemExit(f"the agent cannot firewall apps, so it runs none: {exc}") from None
    monitor = Monitor(agent, flavors)
    monitor.start()
    queues = [agent.keys.queue_name(flavor) for flavor in flavors]
    workers = Supervisor(agent.host_id, queues, settings.agent_workers)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("agent stopping (%s)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        while not stop.is_set():
            workers.keep_running()
            stop.wait(1.0)
    finally:
        monitor.stop()
        workers.terminate()


class Supervisor:
    """Keeps `count` worker processes alive; a dead one is replaced."""

    def __init__(self, host_id: str, queues: list[str], count: int):
        self.host_id = host_id
        self.queues = queues
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count

    def keep_running(self) -> None:
        """Start the workers that are missing or have exited."""
        for index, process in enumerate(self.processes):
            if process is None or process.poll() is not None:
                if process is not None:
                    log.warning("worker %d exited with %s; restarting it", index, process.returncode)
                self.processes[index] = self._spawn(index)

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        name = f"{self.host_id}.{index}.{os.getpid()}.{int(time.time())}"
        command = [
            sys.executable,
            "-m",
            "spacehub.agent.worker",
            "--name",
            name,
            "--parent",
            str(os.getpid()),
        ]
        return subprocess.Popen([*command, *self.queues])

    def terminate(self, grace: float = 10.0) -> None:
        """Ask workers to finish (RQ's warm shutdown), then kill those still busy."""
        running = [p for p in self.processes if p is not None and p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
