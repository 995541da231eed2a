"""Connections to Redis, made in one place so that every process uses the same timeouts."""

from __future__ import annotations

import redis
import redis.asyncio

# redis-py 8 gives every read a 5 s timeout by default, which cuts the platform's blocking reads
# (XREAD of a log, XREADGROUP of events, a pub/sub subscription) that wait longer by design.
# Reads wait as long as their command says; connecting stays bounded.
OPTIONS = {"socket_timeout": None, "socket_connect_timeout": 5}


def connect(url: str) -> redis.Redis:
    """A Redis client for `url`."""
    return redis.Redis.from_url(url, **OPTIONS)


def connect_async(url: str) -> redis.asyncio.Redis:
    """An asyncio Redis client for `url`."""
    return redis.asyncio.Redis.from_url(url, **OPTIONS)
