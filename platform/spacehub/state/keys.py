"""Names of every Redis key spacehub uses, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    namespace: str

    def _key(self, *parts: object) -> str:
        return ":".join((self.namespace, *map(str, parts)))

    @property
    def instance(self) -> str:
        """Hash of facts about this installation that agents need (instance id, hub URL for apps)."""
        return self._key("instance")

    @property
    def spaces(self) -> str:
        """Set of the subdomains that have a space record."""
        return self._key("spaces")

    def space(self, subdomain: str) -> str:
        """Hash describing one space for the proxy: stage, visibility, upstream."""
        return self._key("space", subdomain)

    def gone(self, subdomain: str) -> str:
        """Set for a while once a space is removed, so that agents tell removal from Redis loss."""
        return self._key("gone", subdomain)

    @property
    def space_changes(self) -> str:
        """Pub/sub channel: the subdomain whose record changed ("*" for all)."""
        return self._key("space-changes")

    def oauth_code(self, code: str) -> str:
        """An OAuth authorization code's grant (client, user, scopes), until it is used or expires."""
        return self._key("oauth-code", code)

    def lease(self, role: str) -> str:
        """The holder of a singleton role among controllers (e.g. the reconciler), with its expiry."""
        return self._key("lease", role)

    @property
    def events(self) -> str:
        """Stream of what agents report to the controller."""
        return self._key("events")

    def build_log(self, build_id: int) -> str:
        """Stream of one build's log (it ends with an `end` entry)."""
        return self._key("log", "build", build_id)

    def run_log(self, space_id: int) -> str:
        """Stream of a space's run log: a capped tail of its app's output."""
        return self._key("log", "run", space_id)

    def log_position(self, instance_id: str) -> str:
        """Timestamp of the last run-log line shipped from one container (to resume after restarts)."""
        return self._key("logpos", instance_id)

    def shipped(self, instance_id: str) -> str:
        """Set once the whole output of an exited container is in the run log."""
        return self._key("shipped", instance_id)

    @property
    def hosts(self) -> str:
        """Set of host ids that ever registered."""
        return self._key("hosts")

    def host(self, host_id: str) -> str:
        """Hash of one host: flavors, capacity, usage; expires when heartbeats stop."""
        return self._key("host", host_id)

    def reservations(self, host_id: str) -> str:
        """Hash: job id -> what a deploy job on that host has claimed before its app exists."""
        return self._key("reservations", host_id)

    def admission_lock(self, host_id: str) -> str:
        """Lock under which one host admits jobs, one admission at a time."""
        return self._key("admission", host_id)

    def host_commands(self, host_id: str) -> str:
        """Pub/sub channel: what the edge asks of one host's agent (thaw, wake a space)."""
        return self._key("host-commands", host_id)

    def exits(self, instance_id: str) -> str:
        """List of the times one app exited on its own, newest first (its crash-loop history)."""
        return self._key("exits", instance_id)

    @property
    def activity(self) -> str:
        """Sorted set: space id -> time of its last real request (the proxy counts them)."""
        return self._key("activity")

    def usage(self, host_id: str) -> str:
        """List of a host's recent allocation samples (newest first), for the dashboard's plot."""
        return self._key("usage", host_id)

    def queue_name(self, flavor: str) -> str:
        """The RQ queue of a flavor's deploy jobs."""
        return f"{self.namespace}.{flavor}"
