"""The agent's watch over its host, beside the job workers: heartbeats, run-log shipping, idle tiers,
repair of what happened to apps (agent/recovery.py), route repair and removal of containers nobody
wants any more.

It polls the driver rather than following Docker's event stream, so that every driver gets the
same behaviour; a poll every two seconds bounds how late a crash is noticed."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from spacehub.agent.capacity import available_memory
from spacehub.agent.commands import Commands
from spacehub.agent.context import AgentContext
from spacehub.agent.drivers.base import Instance, InstanceState
from spacehub.agent.recovery import Recovery
from spacehub.agent.tiers import Resident, Tiers
from spacehub.queue.scheduling import is_build_job
from spacehub.stages import IN_PROGRESS_STAGES, Tier
from spacehub.state.events import EventType
from spacehub.state.hosts import HostDirectory, HostRecord
from spacehub.state.logs import RUN_LOG_MAXLEN, LogWriter, now_iso
from spacehub.state.routes import SpaceRecord

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
SHIPPED_TTL = 3600
STALE_PASSES = 3
# A container whose space has no record, and no word that it was removed, is kept this long:
# Redis may have come back empty, before the controller published the records again.
ORPHAN_GRACE_SECONDS = 60.0


@dataclass
class Monitor:
    agent: AgentContext
    flavors: list[str]
    stop_event: threading.Event = field(default_factory=threading.Event)
    _shippers: dict[str, threading.Thread] = field(default_factory=dict)
    _stale: dict[str, int] = field(default_factory=dict)
    _orphaned_since: dict[str, float] = field(default_factory=dict)
    _disk: dict[str, int] = field(default_factory=dict)
    _tiers_seen: dict[str, str] = field(default_factory=dict)
    _cpu_samples: dict[str, tuple[float, float]] = field(default_factory=dict)
    _residents: dict[tuple[str, int], Resident] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tiers = Tiers(self.agent)
        self.recovery = Recovery(self.agent, self.tiers)
        self.commands = Commands(self.agent, self.tiers)

    def start(self) -> list[threading.Thread]:
        """Start the heartbeat, poll and hygiene loops and the host-command listener, in daemon threads."""
        settings = self.agent.settings
        loops = [
            (self.heartbeat, settings.heartbeat_interval),
            (self.poll, POLL_SECONDS),
            (self.hygiene, settings.hygiene_interval),
        ]
        threads = [
            threading.Thread(target=self._loop, args=loop, name=loop[0].__name__, daemon=True)
            for loop in loops
        ]
        threads.append(threading.Thread(target=self.commands.listen, args=(self.stop_event,), daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def stop(self) -> None:
        """Ask every loop to end."""
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
        """Publish the host's record: capacity, flavors, allocations (tiers, CPU use), disk and memory."""
        agent = self.agent
        admission = agent.admission
        capacity = admission.capacity
        self._release_finished_reservations()
        instances = agent.driver.list()
        allocations = admission.allocations(instances)
        now = time.monotonic()
        cpu_rates = self._cpu_rates(instances, now)
        tier_of = {(i.space_id, i.build_id): self._tiers_seen.get(i.id, "") for i in instances}
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
                replace(
                    a,
                    tier=tier_of.get((a.space_id, a.build_id), ""),
                    cpu_used=cpu_rates.get((a.space_id, a.build_id), 0.0),
                )
                for a in allocations
            ],
            disk=self._disk,
            pid=os.getpid(),
            memory_available=available_memory(),
            memory_reserve=capacity.memory_reserve,
            tiers=dict(Counter(self._tiers_seen.values())),
        )
        HostDirectory(agent.redis, agent.keys).heartbeat(record, agent.settings.heartbeat_interval * 3 + 1)

    def _cpu_rates(self, instances: list[Instance], now: float) -> dict[tuple[int, int], float]:
        """Cores each app used since the previous heartbeat."""
        rates = {}
        samples = {}
        for instance in instances:
            usage = self.agent.driver.usage(instance.id) if instance.state.holds_memory else None
            if usage is None:
                continue
            samples[instance.id] = (now, usage.cpu_seconds)
            previous = self._cpu_samples.get(instance.id)
            if previous is not None and now > previous[0]:
                rate = max(0.0, (usage.cpu_seconds - previous[1]) / (now - previous[0]))
                rates[(instance.space_id, instance.build_id)] = rate
        self._cpu_samples = samples
        return rates

    def _release_finished_reservations(self) -> None:
        """A job that ended (or whose worker died) holds no capacity any more."""
        for job_id in self.agent.admission.reservations():
            if not is_build_job(job_id):
                continue  # a wake's claim: released by the wake itself
            try:
                status = Job.fetch(job_id, connection=self.agent.redis).get_status(refresh=True)
            except NoSuchJobError:
                status = None
            if status not in (JobStatus.QUEUED, JobStatus.STARTED):
                self.agent.admission.release(job_id)

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
        """Look at every app on the host: ship logs, repair routes and faults, drop strays, idle tiers."""
        try:
            instances = self.agent.driver.list()
        except Exception as exc:  # the engine is down or restarting
            log.warning("cannot list this host's apps: %s", exc)
            self.recovery.engine_unreachable()
            return
        self.recovery.engine_back()
        residents = self.tiers.residents(instances)
        owned = {r.instance.id for r in residents}
        records = self.agent.routes.get_many([i.subdomain for i in instances])
        for instance in instances:
            self._ship_if_needed(instance)
            if instance.id not in owned:
                record = records.get(instance.subdomain)
                self._restore_route(instance, record)
                self._collect(instance, record)
        for resident in residents:
            self.recovery.check(resident)
        self._forget_vanished(residents)
        self.commands.remember(residents)
        self._tiers_seen = {r.instance.id: (r.record.tier or Tier.SERVING).value for r in residents}
        self.tiers.idle_pass(residents)
        self.tiers.relieve_pressure(residents)
        self.recovery.engine_lost_at = None

    def _forget_vanished(self, residents: list[Resident]) -> None:
        """Apps whose container disappeared (removed from outside) while their route still names
        this host: the route goes, and a serving one starts again wherever the controller says."""
        current = {(r.record.subdomain, r.instance.build_id): r for r in residents}
        for key, resident in self._residents.items():
            if key in current or not self.agent.routes.delete_route(key[0], (key[1], self.agent.host_id)):
                continue
            log.warning("the container of %s disappeared", resident.record.name)
            if resident.record.tier != Tier.SLEEPING:
                self.agent.report_instance(EventType.APP_LOST, resident.instance)
        self._residents = current

    def _ship_if_needed(self, instance: Instance) -> None:
        shipper = self._shippers.get(instance.id)
        unshipped = instance.state != InstanceState.EXITED or not self.agent.redis.exists(
            self.agent.keys.shipped(instance.id)
        )
        if (shipper is None or not shipper.is_alive()) and unshipped:
            self._ship(instance)

    def _restore_route(self, instance: Instance, record: SpaceRecord | None) -> None:
        """After Redis lost the route (restart), point it back at the container the controller says
        is live, frozen or not (a visit thaws a frozen one, as the tier says)."""
        if (
            record is not None
            and not record.upstream
            and record.live_build == instance.build_id
            and record.live_host == self.agent.host_id
            and instance.state in (InstanceState.RUNNING, InstanceState.FROZEN)
            and instance.upstream
        ):
            log.info("restoring the route of %s to %s", instance.subdomain, instance.upstream)
            tier = Tier.FROZEN if instance.state == InstanceState.FROZEN else Tier.SERVING
            self.agent.routes.add_route(
                instance.subdomain, instance.upstream, instance.build_id, self.agent.host_id, tier=tier
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
        if record is not None:
            self._orphaned_since.pop(instance.id, None)
        if wanted:
            self._stale.pop(instance.id, None)
            return
        passes = self._stale.get(instance.id, 0) + 1
        self._stale[instance.id] = passes
        if record is None and not self.agent.routes.is_gone(instance.subdomain):
            orphaned = self._orphaned_since.setdefault(instance.id, time.monotonic())
            if time.monotonic() - orphaned < ORPHAN_GRACE_SECONDS:
                return
        shipped = self.agent.redis.exists(self.agent.keys.shipped(instance.id))
        if passes >= STALE_PASSES and (shipped or instance.state != InstanceState.EXITED or passes > 10):
            log.info(
                "removing container %s of %s (build %s)",
                instance.id[:12],
                instance.subdomain,
                instance.build_id,
            )
            self.agent.driver.stop(instance.id, timeout=10)
            self._stale.pop(instance.id, None)
            self._orphaned_since.pop(instance.id, None)

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
        last_timestamp = ""
        for timestamp, text in agent.driver.logs(
            instance.id, follow=True, since=float(since) if since else None
        ):
            last_timestamp = timestamp or last_timestamp
            writer.write(text, timestamp or now_iso())
            if time.monotonic() - last_saved > 1.0:
                writer.flush()
                agent.redis.set(position_key, _epoch(timestamp), ex=7 * 24 * 3600)
                last_saved = time.monotonic()
        writer.flush()
        if last_timestamp:  # where a started-again container's output resumes
            agent.redis.set(position_key, _epoch(last_timestamp), ex=7 * 24 * 3600)
        current = agent.driver.poll(instance.id)
        if current is None or current.state == InstanceState.EXITED:
            agent.redis.set(agent.keys.shipped(instance.id), "1", ex=SHIPPED_TTL)


def _epoch(timestamp: str) -> float:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() + 0.001
    except ValueError:
        return time.time()
