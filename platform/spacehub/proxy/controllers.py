"""The controllers the edge sends hub requests to: the first that takes a connection, in the
configured order; one that refused is tried last for a few seconds, so that a dead controller costs
one failed connection, not one per request."""

from __future__ import annotations

import time

PASS_OVER_SECONDS = 5.0


class Controllers:
    def __init__(self, urls: list[str]):
        self.urls = urls
        self._down_until: dict[str, float] = {}

    def in_order(self) -> list[str]:
        """Every controller, those that refused lately last."""
        now = time.monotonic()
        return sorted(self.urls, key=lambda url: self._down_until.get(url, 0.0) > now)

    def first(self) -> str:
        """The controller to ask now."""
        return self.in_order()[0]

    def refused(self, url: str) -> None:
        """`url` did not take a connection: ask the others first for a while."""
        self._down_until[url] = time.monotonic() + PASS_OVER_SECONDS

    def answered(self, url: str) -> None:
        """`url` answered: it is preferred again."""
        self._down_until.pop(url, None)
