"""Waiting on conditions, never on the clock: a predicate polled until it holds or a deadline
passes, and a failure that says what was awaited and what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | bool | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    last: Callable[[], object] | None = None,
) -> T:
    """The first truthy value of `condition()`, polled every `interval` seconds; after `timeout`
    seconds, an AssertionError naming `what` (and showing `last()`, when given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            seen = f"; last seen: {last()!r}" if last is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{seen}")
        time.sleep(interval)
