"""A lease in Redis: which one of several processes holds a role (the controllers' reconciler and
report consumer), for as long as it keeps renewing it. A holder that dies loses it when it expires."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field

import redis

from spacehub.state.keys import Keys

# Take the lease when it is free, or extend it when this holder has it; one round trip, atomic.
_ACQUIRE_OR_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def process_identity() -> str:
    """Names this process among its peers: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Lease:
    redis: redis.Redis
    keys: Keys
    role: str
    seconds: float
    holder: str = field(default_factory=process_identity)

    def acquire_or_renew(self) -> bool:
        """Whether this process holds the lease now (for `seconds` more), taking it if it is free."""
        script = self.redis.register_script(_ACQUIRE_OR_RENEW)
        return bool(script(keys=[self.keys.lease(self.role)], args=[self.holder, int(self.seconds * 1000)]))

    def release(self) -> None:
        """Give the lease up, if this process holds it, so that a peer takes over at once."""
        script = self.redis.register_script(_RELEASE)
        script(keys=[self.keys.lease(self.role)], args=[self.holder])
