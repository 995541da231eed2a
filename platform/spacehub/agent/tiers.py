"""Idle tiers on one host: a space's app goes from serving to frozen after its `freeze_after`, to
sleeping (container stopped, kept for a fast start) after its `sleep_after`, and back to serving
on the first request. Under memory pressure the least recently visited apps are put to sleep
first, so that the host admits new spaces instead of refusing them.

Visitors see none of this but the wake time: the Hub stage stays RUNNING while an app is frozen,
and the edge asks this host's agent directly to thaw or wake an app (`host_commands` channel),
without waiting for the controller."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from spacehub.agent.capacity import available_memory
from spacehub.agent.context import AgentContext
from spacehub.agent.drivers.base import Instance, InstanceState
from spacehub.agent.health import wait_until_healthy
from spacehub.queue.flavors import Flavor, Resources
from spacehub.stages import Stage, Tier
from spacehub.state.events import EventType
from spacehub.state.logs import RUN_LOG_MAXLEN, LogWriter, now_iso
from spacehub.state.routes import NO_UPSTREAM, SpaceRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resident:
    """An app this host serves (or keeps asleep): its instance, its route, its last visit."""

    instance: Instance
    record: SpaceRecord
    last_visit: float


def describe_idle(seconds: float) -> str:
    """`3 h`, `12 min` or `40 s`: how long a space went without visitors."""
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


class Tiers:
    """Moves this host's apps between tiers; safe to use from several threads."""

    def __init__(self, agent: AgentContext):
        self.agent = agent
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    @contextmanager
    def exclusive(self, instance_id: str) -> Iterator[None]:
        """One transition at a time per app (a thaw racing a freeze must not lose)."""
        with self._locks[instance_id]:
            yield

    # Who lives here ------------------------------------------------------------------------------

    def residents(self, instances: list[Instance]) -> list[Resident]:
        """The apps whose route this host owns (the container that serves the space, or sleeps)."""
        agent = self.agent
        records = agent.routes.get_many([i.subdomain for i in instances])
        owned = [
            (i, r)
            for i in instances
            if (r := records.get(i.subdomain)) is not None and r.is_owned_by(i.build_id, agent.host_id)
        ]
        visits = agent.last_visits([i.space_id for i, _ in owned])
        unknown = [i.space_id for i, _ in owned if i.space_id not in visits]
        if unknown:  # apps nobody has seen yet (an agent older than this one started them)
            visits.update({space_id: time.time() for space_id in unknown})
            agent.mark_awake(*unknown)
        return [Resident(i, r, visits[i.space_id]) for i, r in owned]

    # Transitions --------------------------------------------------------------------------------

    def freeze(self, resident: Resident) -> None:
        """Freeze an idle app (unless a visitor came meanwhile) and mark it frozen in the route table."""
        instance, record = resident.instance, resident.record
        with self.exclusive(instance.id):
            if self.agent.last_visits([instance.space_id]).get(instance.space_id, 0.0) > resident.last_visit:
                return  # a visitor came meanwhile
            self.agent.driver.freeze(instance.id)
            self.agent.routes.set_tier(record.subdomain, instance.build_id, self.agent.host_id, Tier.FROZEN)
        log.info(
            "froze %s after %s without visitors",
            record.name,
            describe_idle(time.time() - resident.last_visit),
        )

    def thaw(self, instance: Instance, record: SpaceRecord) -> None:
        """Let a frozen app run again and mark it serving in the route table."""
        with self.exclusive(instance.id):
            self.agent.driver.thaw(instance.id)
            self.agent.mark_awake(instance.space_id)
            self.agent.routes.set_tier(record.subdomain, instance.build_id, self.agent.host_id, Tier.SERVING)

    def sleep(self, resident: Resident, reason: str, *, evicted: bool = False) -> None:
        """Stop the app and keep its container; the route stays this host's, without an upstream,
        so that the next visit wakes it here."""
        instance, record = resident.instance, resident.record
        agent = self.agent
        with self.exclusive(instance.id):
            if not agent.routes.set_tier(
                record.subdomain, instance.build_id, agent.host_id, Tier.SLEEPING, NO_UPSTREAM
            ):
                return
            agent.driver.halt(instance.id, timeout=3)
        if evicted:
            self.note_in_run_log(
                instance, f"Put to sleep at {now_iso()} to make room on {agent.host_id}: {reason}"
            )
        log.info("%s sleeps: %s", record.name, reason)
        agent.report_instance(EventType.APP_SLEPT, instance, message=f"{reason}; a visit wakes it up")

    def wake(self, instance: Instance, record: SpaceRecord) -> bool:
        """Start a sleeping app again on this host; False (the controller then starts it
        wherever there is room) when it cannot."""
        agent = self.agent
        flavor = agent.flavors.get(instance.flavor)
        if flavor is None:
            return False
        request = flavor.request_for(instance.sdk)
        admission = agent.admission
        claim = f"wake-{instance.id}"
        with admission.locked():
            if admission.short_of(flavor, request, admission.allocations()) is not None:
                self.make_room(flavor, request)
            if admission.short_of(flavor, request, admission.allocations()) is not None:
                return False
            admission.reserve(claim, flavor, request, instance.gpus)
        try:
            with self.exclusive(instance.id):
                return self.bring_up(instance, record)
        finally:
            admission.release(claim)

    def bring_up(self, instance: Instance, record: SpaceRecord) -> bool:
        """Start a stopped instance again and route to it once it answers (a wake, a restart)."""
        agent = self.agent
        started = agent.driver.resume(instance.id)
        if started is None:
            return False
        timeout = started.startup_timeout or agent.settings.default_startup_timeout
        outcome = wait_until_healthy(agent.driver, started, timeout)
        if not outcome.healthy or outcome.last is None:
            log.warning(
                "%s did not come back (%s)", record.name, "timed out" if outcome.timed_out else "exited"
            )
            return False
        started = outcome.last
        self.agent.mark_awake(instance.space_id)
        if not agent.routes.set_tier(
            record.subdomain, instance.build_id, agent.host_id, Tier.SERVING, started.upstream
        ):
            return False
        agent.report_instance(EventType.APP_RUNNING, started, upstream=started.upstream)
        return True

    def note_in_run_log(self, instance: Instance, text: str) -> None:
        """Put a line saying what the platform did to the app into its run log."""
        writer = LogWriter(
            self.agent.redis, self.agent.keys.run_log(instance.space_id), maxlen=RUN_LOG_MAXLEN
        )
        writer.write(f"===== {text} =====")
        writer.flush()

    # Policies -----------------------------------------------------------------------------------

    def idle_pass(self, residents: list[Resident]) -> None:
        """Freeze and put to sleep the apps idle past their times."""
        now = time.time()
        for resident in residents:
            instance, record = resident.instance, resident.record
            idle = now - resident.last_visit
            awake = instance.state in (InstanceState.RUNNING, InstanceState.FROZEN)
            if not awake or record.tier == Tier.SLEEPING:
                continue
            if (
                record.sleep_after is not None
                and record.stage == Stage.RUNNING
                and idle >= record.sleep_after
            ):
                self.sleep(resident, f"Sleeping after {describe_idle(idle)} without visitors")
            elif (
                record.freeze_after is not None
                and instance.state == InstanceState.RUNNING
                and idle >= record.freeze_after
            ):
                self.freeze(resident)

    def evictable(self, residents: list[Resident]) -> list[Resident]:
        """Apps that may be put to sleep to make room, least recently visited first."""
        cutoff = time.time() - self.agent.settings.agent_evict_after
        candidates = [
            r
            for r in residents
            if r.instance.state.holds_memory and r.record.tier != Tier.SLEEPING and r.last_visit <= cutoff
        ]
        return sorted(candidates, key=lambda r: r.last_visit)

    def relieve_pressure(self, residents: list[Resident]) -> None:
        """Real free memory below the host's reserve: the least recently visited app sleeps (one a
        pass, so that what it frees is seen before anything else goes)."""
        reserve = self.agent.admission.capacity.memory_reserve
        if available_memory() >= reserve:
            return
        for victim in self.evictable(residents)[:1]:
            self.sleep(victim, "Put to sleep: its host ran short of memory", evicted=True)

    def make_room(self, flavor: Flavor, request: Resources) -> None:
        """Put the least recently visited apps to sleep until one more app of `flavor` fits (the
        caller holds the admission lock)."""
        admission = self.agent.admission
        for victim in self.evictable(self.residents(self.agent.driver.list())):
            if admission.short_of(flavor, request, admission.allocations()) != "memory":
                return
            self.sleep(victim, "Put to sleep to make room for another space", evicted=True)
