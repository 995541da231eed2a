"""Everything the controller's services share: settings, database, Redis, queues."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from rq import Queue
from sqlalchemy.orm import Session

from spacehub.config import Settings
from spacehub.controller.throttle import LoginThrottle
from spacehub.controller.vault import Vault
from spacehub.db.session import session_scope
from spacehub.queue.flavors import Flavor, load_flavors
from spacehub.state.connection import connect
from spacehub.state.events import EventStream
from spacehub.state.hosts import HostDirectory
from spacehub.state.keys import Keys
from spacehub.state.routes import RouteTable


@dataclass
class ControllerContext:
    settings: Settings
    redis: redis.Redis
    keys: Keys = field(init=False)
    routes: RouteTable = field(init=False)
    events: EventStream = field(init=False)
    hosts: HostDirectory = field(init=False)
    flavors: dict[str, Flavor] = field(init=False)
    logins: LoginThrottle = field(init=False)
    vault: Vault = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.namespace)
        self.routes = RouteTable(self.redis, self.keys)
        self.events = EventStream(self.redis, self.keys)
        self.hosts = HostDirectory(self.redis, self.keys)
        self.flavors = load_flavors(self.settings.flavors_file)
        self.logins = LoginThrottle(self.redis, self.settings.namespace)
        self.vault = Vault(self.settings.resolved_secrets_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> ControllerContext:
        """A context with its own Redis connection, from `settings`."""
        return cls(settings=settings, redis=connect(settings.resolved_redis_url))

    def queue(self, flavor: str) -> Queue:
        """The deploy queue of a hardware flavor."""
        return Queue(self.keys.queue_name(flavor), connection=self.redis)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A database session that commits when the block ends, or rolls back on error."""
        with session_scope(self.settings.resolved_database_url) as session:
            yield session
