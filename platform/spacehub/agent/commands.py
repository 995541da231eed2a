"""What the edge asks of this host's agent, on its `host_commands` pub/sub channel: thaw a frozen app,
wake a sleeping one. The edge sends these on a visitor's first request, without waiting for the
controller, and repeats them while it holds the request: a message lost while this agent restarts
costs one repetition."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import redis

from spacehub.agent.context import AgentContext
from spacehub.agent.drivers.base import Instance, InstanceState
from spacehub.agent.tiers import Resident, Tiers
from spacehub.stages import Tier
from spacehub.state.commands import Action, Command
from spacehub.state.events import Event, EventType
from spacehub.state.routes import SpaceRecord

log = logging.getLogger(__name__)


class Commands:
    def __init__(self, agent: AgentContext, tiers: Tiers):
        self.agent = agent
        self.tiers = tiers
        self._residents: dict[tuple[str, int], Resident] = {}
        self._busy: set[tuple[str, int]] = set()
        self._guard = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="command")

    def remember(self, residents: list[Resident]) -> None:
        """The apps of the latest poll, so that a command finds its app without asking the engine."""
        self._residents = {(r.record.subdomain, r.instance.build_id): r for r in residents}

    def listen(self, stop: threading.Event) -> None:
        """Run the commands sent on this host's channel until `stop` is set, through Redis outages."""
        channel = self.agent.keys.host_commands(self.agent.host_id)
        while not stop.is_set():
            try:
                pubsub = self.agent.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and (command := Command.from_message(message["data"])):
                        self.submit(command)
            except redis.ConnectionError as exc:
                log.warning("host commands unavailable (%s); retrying", exc)
                stop.wait(1.0)

    def submit(self, command: Command) -> None:
        """Run a command unless the same one runs already (the edge repeats them)."""
        key = (command.subdomain, command.build)
        with self._guard:
            if key in self._busy:
                return
            self._busy.add(key)
        self._pool.submit(self._run, command)

    def _run(self, command: Command) -> None:
        key = (command.subdomain, command.build)
        try:
            self.handle(command)
        except Exception:
            log.exception("%s of %s failed", command.action, command.subdomain)
        finally:
            with self._guard:
                self._busy.discard(key)

    def handle(self, command: Command) -> None:
        """Thaw or wake the app, if this host still owns it; one it cannot wake goes to the controller."""
        record = self.agent.routes.get(command.subdomain)
        if record is None or not record.is_owned_by(command.build, self.agent.host_id):
            return  # another host's app, or one that moved on meanwhile
        instance = self._find(command)
        if command.action == Action.THAW and record.tier == Tier.FROZEN and instance is not None:
            self.tiers.thaw(instance, record)
        elif command.action == Action.WAKE and record.tier == Tier.SLEEPING:
            current = self.agent.driver.poll(instance.id) if instance is not None else None
            if current is None or not self.tiers.wake(current, record):
                self.hand_over(record, command.build, current)

    def _find(self, command: Command) -> Instance | None:
        """The instance of a command's app: from the latest poll, or from the engine."""
        resident = self._residents.get((command.subdomain, command.build))
        if resident is not None:
            return resident.instance
        found = [
            i
            for i in self.agent.driver.list()
            if i.subdomain == command.subdomain and i.build_id == command.build
        ]
        return found[0] if found else None

    def hand_over(self, record: SpaceRecord, build_id: int, instance: Instance | None) -> None:
        """This host cannot wake the app (its container is gone, or there is no room): give the
        route up and let the controller start the space wherever there is room."""
        log.info("cannot wake %s here; handing it over to the controller", record.name)
        if not self.agent.routes.delete_route(record.subdomain, (build_id, self.agent.host_id)):
            return
        if instance is not None and instance.state != InstanceState.EXITED:
            self.agent.driver.halt(instance.id, timeout=3)
        self.agent.events.publish(Event(type=EventType.WAKE_REQUESTED, space_id=record.id, build_id=0))
