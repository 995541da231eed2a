"""Container states read right, and faults that are not the app's repaired.

- Paused from outside the platform: thawed.
- Killed from outside (SIGKILL or SIGTERM without an out-of-memory kill), or stopped by a restart
  of the Docker engine: started again, at once; not the app's failure.
- Exited on its own, or killed by the kernel for memory: started again with a growing delay
  (Kubernetes' CrashLoopBackOff); after CRASH_LIMIT such exits within CRASH_WINDOW seconds the
  space is RUNTIME_ERROR with the exit code (or "out of memory", with its limit) and the app's
  last lines.
An app that never became healthy is the deploy job's to report (RUNTIME_ERROR at once)."""

from __future__ import annotations

import logging
import threading
import time

from spacehub.agent.context import AgentContext
from spacehub.agent.drivers.base import Instance, InstanceState
from spacehub.agent.health import exit_reason
from spacehub.agent.tiers import Resident, Tiers
from spacehub.stages import Tier
from spacehub.state.events import EventType
from spacehub.state.routes import NO_UPSTREAM

log = logging.getLogger(__name__)

CRASH_LIMIT = 3
CRASH_WINDOW = 600
FAILURE_LOG_LINES = 40
# 128 + the signal: what an app stopped by `docker kill`/`docker stop` (or the engine) exits with.
STOPPED_FROM_OUTSIDE = {128 + 9, 128 + 15}


class Recovery:
    def __init__(self, agent: AgentContext, tiers: Tiers):
        self.agent = agent
        self.tiers = tiers
        self.engine_lost_at: float | None = None
        self._restarting: set[str] = set()
        self._guard = threading.Lock()

    def engine_unreachable(self) -> None:
        """The runtime did not answer: whatever stopped meanwhile was the engine's doing."""
        if self.engine_lost_at is None:
            self.engine_lost_at = time.time()
            log.warning("the container engine does not answer")

    def engine_back(self) -> None:
        """The engine answers again after being lost: set the host up again (networks, firewall)."""
        if self.engine_lost_at is not None:
            log.info("the container engine answers again; setting the host up again")
            self.agent.driver.prepare()

    def check(self, resident: Resident) -> None:
        """Repair what happened to one app this host serves."""
        instance, record = resident.instance, resident.record
        if instance.id in self._restarting:
            return
        if instance.state == InstanceState.FROZEN and record.tier not in (Tier.FROZEN, Tier.CHECKPOINTED):
            self.tiers.note_in_run_log(instance, "Paused from outside the platform: thawed")
            self.tiers.thaw(instance, record)
        elif instance.state == InstanceState.RUNNING and record.tier == Tier.FROZEN:
            self.tiers.thaw(instance, record)  # thawed from outside: say so in the route table
        elif instance.state in (InstanceState.EXITED, InstanceState.CREATED) and record.tier != Tier.SLEEPING:
            self.handle_exit(resident)

    def handle_exit(self, resident: Resident) -> None:
        """Start an exited app again (with a growing delay if it crashed), or give up after CRASH_LIMIT."""
        agent = self.agent
        record = resident.record
        instance = agent.driver.poll(resident.instance.id)
        if instance is None:
            return
        outside = not instance.oom_killed and (
            instance.exit_code in STOPPED_FROM_OUTSIDE or self.engine_lost_at is not None
        )
        what = "was stopped from outside the platform" if outside else exit_reason(instance)
        exits = 0 if outside else self.count_exit(instance)
        if exits >= CRASH_LIMIT:
            self.give_up(instance, record.subdomain, what, exits)
            return
        delay = 0.0 if outside else float(2 ** (exits - 1))
        agent.routes.set_tier(record.subdomain, instance.build_id, agent.host_id, Tier.SERVING, NO_UPSTREAM)
        note = f"The app {what}; starting it again" + (f" in {delay:g} s" if delay else "")
        if exits:
            note += (
                f" ({exits} of {CRASH_LIMIT} exits in {CRASH_WINDOW // 60} min before it is a runtime error)"
            )
        log.warning("%s: %s", record.name, note)
        self.tiers.note_in_run_log(instance, note)
        with self._guard:
            self._restarting.add(instance.id)
        threading.Thread(
            target=self._restart, args=(resident, delay), name=f"restart-{instance.id[:12]}", daemon=True
        ).start()

    def _restart(self, resident: Resident, delay: float) -> None:
        try:
            time.sleep(delay)
            with self.tiers.exclusive(resident.instance.id):
                self.tiers.bring_up(resident.instance, resident.record)
        except Exception:
            log.exception("restarting %s failed", resident.record.name)
        finally:
            with self._guard:
                self._restarting.discard(resident.instance.id)

    def count_exit(self, instance: Instance) -> int:
        """Record one exit of the app's own; how many it had within CRASH_WINDOW."""
        key = self.agent.keys.exits(instance.id)
        now = time.time()
        pipe = self.agent.redis.pipeline()
        pipe.lpush(key, now)
        pipe.ltrim(key, 0, CRASH_LIMIT * 4)
        pipe.expire(key, CRASH_WINDOW)
        pipe.lrange(key, 0, -1)
        times = [float(t) for t in pipe.execute()[-1]]
        return sum(1 for t in times if now - t <= CRASH_WINDOW)

    def give_up(self, instance: Instance, subdomain: str, what: str, exits: int) -> None:
        """Take a crashing app out of the route table and report it crashed, with its last lines."""
        agent = self.agent
        if not agent.routes.delete_route(subdomain, (instance.build_id, agent.host_id)):
            return
        tail = "\n".join(t for _ts, t in agent.driver.logs(instance.id, follow=False, tail=FAILURE_LOG_LINES))
        log.warning("space %s: the app %s, %d times in %d s: giving up", subdomain, what, exits, CRASH_WINDOW)
        agent.report_instance(
            EventType.APP_CRASHED,
            instance,
            message=f"the app {what} ({exits} times in {CRASH_WINDOW // 60} min)\n{tail}".strip(),
        )
