"""The agent's watch over its host, beside the job workers: heartbeats, run-log shipping, crash
detection, route repair and removal of containers nobody wants any more.

It polls the driver rather than following Docker's event stream, so that every driver gets the
same behaviour; a poll every two seconds bounds how late a crash is noticed."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from spacehub.agent.context import AgentContext
from spacehub.agent.drivers.base import Instance, InstanceState
from spacehub.stages import IN_PROGRESS_STAGES
from spacehub.state.events import Event, EventType
from spacehub.state.hosts import HostDirectory, HostRecord
from spacehub.state.logs import RUN_LOG_MAXLEN, LogWriter, now_iso
from spacehub.state.routes import SpaceRecord

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
SHIPPED_TTL = 3600
STALE_PASSES = 3
MEMORY_SAMPLE_SECONDS = 30.0


@dataclass
class Monitor:
    agent: AgentContext
    flavors: list[str]
    stop_event: threading.Event = field(default_factory=threading.Event)
    _shippers: dict[str, threading.Thread] = field(default_factory=dict)
    _running: set[str] = field(default_factory=set)
    _stale: dict[str, int] = field(default_factory=dict)
    _disk: dict[str, int] = field(default_factory=dict)
    _memory: dict[tuple[int, int], int] = field(default_factory=dict)

    def start(self) -> list[threading.Thread]:
        settings = self.agent.settings
        loops = [
            (self.heartbeat, settings.heartbeat_interval),
            (self.poll, POLL_SECONDS),
            (self.sample_memory, MEMORY_SAMPLE_SECONDS),
            (self.hygiene, settings.hygiene_interval),
        ]
        threads = [
            threading.Thread(target=self._loop, args=loop, name=loop[0].__name__, daemon=True)
            for loop in loops
        ]
        for thread in threads:
            thread.start()
        return threads

    def stop(self) -> None:
        self.stop_event.set()

    def _loop(self, step: Callable[[], None], interval: float) -> None:
        while not self.stop_event.is_set():
            try:
                step()
            except Exception:
                log.exception("%s failed", step.__name__)
            self.stop_event.wait(interval)

    # Heartbeats ---------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        agent = self.agent
        admission = agent.admission
        capacity = admission.capacity
        self._release_finished_reservations()
        record = HostRecord(
            host=agent.host_id,
            flavors=self.flavors,
            cpus=capacity.cpus,
            memory=capacity.memory,
            gpus=list(capacity.gpus),
            gpu_model=capacity.gpu_model,
            driver=agent.settings.agent_driver,
            advertise=agent.settings.advertise_address,
            last_seen=time.time(),
            allocations=[
                replace(a, memory_used=self._memory.get((a.space_id, a.build_id), 0))
                for a in admission.allocations()
            ],
            disk=self._disk,
            pid=os.getpid(),
        )
        HostDirectory(agent.redis, agent.keys).heartbeat(record, agent.settings.heartbeat_interval * 3 + 1)

    def _release_finished_reservations(self) -> None:
        """A job that ended (or whose worker died) holds no capacity any more."""
        for job_id in self.agent.admission.reservations():
            try:
                status = Job.fetch(job_id, connection=self.agent.redis).get_status(refresh=True)
            except NoSuchJobError:
                status = None
            if status not in (JobStatus.QUEUED, JobStatus.STARTED):
                self.agent.admission.release(job_id)

    def sample_memory(self) -> None:
        """What each app really uses (its flavor's limit is in the allocation), for the operators."""
        memory = {}
        for instance in self.agent.driver.list():
            if instance.state == InstanceState.RUNNING:
                used = self.agent.driver.stats(instance.id).get("memory")
                if used is not None:
                    memory[(instance.space_id, instance.build_id)] = int(used)
        self._memory = memory

    # Disk hygiene -------------------------------------------------------------------------------

    def hygiene(self) -> None:
        """Drop images nobody will run again (keep the live build and the one before it), bound
        the build cache, and measure what the host's disk holds for the operator."""
        records = self.agent.routes.get_all_routes()
        keep: dict[int, set[int]] = {}
        for record in records.values():
            wanted = {b for b in (record.build, record.live_build, record.current_build) if b}
            keep[record.id] = wanted
        self.agent.driver.prune(keep, self.agent.settings.build_cache_limit)
        self._disk = self.agent.driver.disk_usage()

    # Containers ---------------------------------------------------------------------------------

    def poll(self) -> None:
        instances = self.agent.driver.list()
        records = {i.subdomain: self.agent.routes.get(i.subdomain) for i in instances}
        seen_running = set()
        for instance in instances:
            record = records[instance.subdomain]
            shipper = self._shippers.get(instance.id)
            unshipped = instance.state == InstanceState.RUNNING or not self.agent.redis.exists(
                self.agent.keys.shipped(instance.id)
            )
            if (shipper is None or not shipper.is_alive()) and unshipped:
                self._ship(instance)
            if instance.state == InstanceState.RUNNING:
                seen_running.add(instance.id)
                self._restore_route(instance, record)
            elif instance.id in self._running:
                self._handle_exit(instance, record)
            self._collect(instance, record)
        self._running = seen_running

    def _restore_route(self, instance: Instance, record: SpaceRecord | None) -> None:
        """After Redis lost the route (restart), point it back at the container the controller says
        is live."""
        if (
            record is not None
            and not record.upstream
            and record.live_build == instance.build_id
            and record.live_host == self.agent.host_id
            and instance.upstream
        ):
            log.info("restoring the route of %s to %s", instance.subdomain, instance.upstream)
            self.agent.routes.add_route(
                instance.subdomain, instance.upstream, instance.build_id, self.agent.host_id
            )

    def _handle_exit(self, instance: Instance, record: SpaceRecord | None) -> None:
        """A container that served traffic stopped without being asked to: a crash."""
        if record is None or record.build != instance.build_id or record.host != self.agent.host_id:
            return
        if not self.agent.routes.delete_route(instance.subdomain, instance.build_id):
            return
        tail = "\n".join(t for _ts, t in self.agent.driver.logs(instance.id, follow=False, tail=40))
        code = instance.exit_code
        what = "was killed: out of memory?" if code == 137 else f"exited with code {code}"
        log.warning("space %s: the app %s", instance.subdomain, what)
        self.agent.events.publish(
            Event(
                type=EventType.APP_CRASHED,
                space_id=instance.space_id,
                build_id=instance.build_id,
                host=self.agent.host_id,
                container=instance.id,
                message=f"the app {what}\n{tail}".strip(),
            )
        )

    def _collect(self, instance: Instance, record: SpaceRecord | None) -> None:
        """Remove containers no space wants: of deleted spaces, of builds neither live nor in
        progress, and exited ones whose output is shipped. A few passes of grace first, so that a
        container is never removed between its start and its route switch."""
        wanted = record is not None and (
            record.is_live(instance.build_id, self.agent.host_id)
            or (
                record.current_build == instance.build_id
                and record.stage in IN_PROGRESS_STAGES
                and instance.state != InstanceState.EXITED
            )
        )
        if wanted:
            self._stale.pop(instance.id, None)
            return
        passes = self._stale.get(instance.id, 0) + 1
        self._stale[instance.id] = passes
        shipped = self.agent.redis.exists(self.agent.keys.shipped(instance.id))
        if passes >= STALE_PASSES and (shipped or instance.state == InstanceState.RUNNING or passes > 10):
            log.info(
                "removing container %s of %s (build %s)",
                instance.id[:12],
                instance.subdomain,
                instance.build_id,
            )
            self.agent.driver.stop(instance.id, timeout=10)
            self._stale.pop(instance.id, None)

    # Run logs -----------------------------------------------------------------------------------

    def _ship(self, instance: Instance) -> None:
        thread = threading.Thread(
            target=self._ship_logs, args=(instance,), name=f"logs-{instance.id[:12]}", daemon=True
        )
        self._shippers[instance.id] = thread
        thread.start()

    def _ship_logs(self, instance: Instance) -> None:
        agent = self.agent
        writer = LogWriter(agent.redis, agent.keys.run_log(instance.space_id), maxlen=RUN_LOG_MAXLEN)
        position_key = agent.keys.log_position(instance.id)
        since = agent.redis.get(position_key)
        last_saved = 0.0
        for timestamp, text in agent.driver.logs(
            instance.id, follow=True, since=float(since) if since else None
        ):
            writer.write(text, timestamp or now_iso())
            if time.monotonic() - last_saved > 1.0:
                writer.flush()
                agent.redis.set(position_key, _epoch(timestamp), ex=7 * 24 * 3600)
                last_saved = time.monotonic()
        writer.flush()
        current = agent.driver.poll(instance.id)
        if current is None or current.state == InstanceState.EXITED:
            agent.redis.set(agent.keys.shipped(instance.id), "1", ex=SHIPPED_TTL)
            agent.redis.delete(position_key)


def _epoch(timestamp: str) -> float:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() + 0.001
    except ValueError:
        return time.time()
