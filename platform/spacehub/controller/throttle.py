"""Limits on guessing: login attempts per account and per client address, in a moving window kept
in Redis (the `limits` library), so that every controller replica counts the same attempts."""

from __future__ import annotations

import redis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

PER_ACCOUNT = parse("10/minute")
PER_ADDRESS = parse("60/minute")


class LoginThrottle:
    """Whether one more login attempt may be checked (a password check costs a full argon2 hash)."""

    def __init__(self, client: redis.Redis, namespace: str):
        storage = RedisStorage(
            "redis://", connection_pool=client.connection_pool, key_prefix=f"{namespace}:limits"
        )
        self.limiter = MovingWindowRateLimiter(storage)

    def attempt(self, account: str, address: str) -> bool:
        """Count an attempt to log in to `account` from `address`; False once either is over its limit."""
        by_account = self.limiter.hit(PER_ACCOUNT, "login-account", account.lower())
        by_address = self.limiter.hit(PER_ADDRESS, "login-address", address)
        return by_account and by_address
