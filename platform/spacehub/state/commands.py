"""Commands the edge sends to one host's agent, on that host's `host_commands` pub/sub channel."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    THAW = "thaw"  # a frozen app has a visitor
    WAKE = "wake"  # a sleeping app has a visitor


@dataclass(frozen=True)
class Command:
    action: Action
    subdomain: str
    build: int

    def to_message(self) -> str:
        """The command as a JSON message for the host's channel."""
        return json.dumps({"action": self.action.value, "subdomain": self.subdomain, "build": self.build})

    @classmethod
    def from_message(cls, data: bytes | str) -> Command | None:
        """The command in a message, or None for anything else."""
        try:
            raw = json.loads(data)
            return cls(action=Action(raw["action"]), subdomain=str(raw["subdomain"]), build=int(raw["build"]))
        except (ValueError, KeyError, TypeError):
            return None
