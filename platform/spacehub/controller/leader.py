"""Which controller runs the singletons (the reconciler, the report consumer) when several share one
database: the holder of a lease in Redis, renewed three times per term. A controller that dies or
loses Redis stops leading; another takes over when the lease expires."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field

import redis

from spacehub.controller.context import ControllerContext
from spacehub.state.lease import Lease

log = logging.getLogger(__name__)

ROLE = "controller"


@dataclass
class Leadership:
    lease: Lease
    leading: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def for_context(cls, ctx: ControllerContext) -> Leadership:
        """This process's candidacy for the installation's leading controller."""
        return cls(Lease(ctx.redis, ctx.keys, ROLE, ctx.settings.leader_lease_seconds))

    def run(self, stop: threading.Event) -> None:
        """Hold or seek the lease until `stop` is set, then give it up for a peer to take at once."""
        while not stop.is_set():
            self.renew()
            stop.wait(self.lease.seconds / 3)
        if self.leading.is_set():
            self.leading.clear()
            with contextlib.suppress(redis.RedisError):  # it expires by itself
                self.lease.release()

    def renew(self) -> None:
        """Take or extend the lease; whether this controller leads follows what Redis says."""
        try:
            held = self.lease.acquire_or_renew()
        except redis.RedisError as exc:
            held = False  # without Redis, this controller cannot know that no other leads
            log.warning("leader lease unavailable (%s)", exc)
        if held and not self.leading.is_set():
            log.info("this controller (%s) now leads: it reconciles and applies reports", self.lease.holder)
            self.leading.set()
        elif not held and self.leading.is_set():
            log.warning("this controller (%s) lost the lead", self.lease.holder)
            self.leading.clear()
