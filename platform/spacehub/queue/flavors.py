"""Hardware flavors: what a space may ask for, and the limits and queue that come with it."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, field_validator

from spacehub.spec.config import parse_duration

DEFAULT_FLAVORS_FILE = Path(__file__).with_name("flavors.yaml")
DEFAULT_FLAVOR = "cpu-basic"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", re.I)
_SIZE_UNITS = {
    "k": 1e3,
    "ki": 1024,
    "m": 1e6,
    "mi": 1024**2,
    "g": 1e9,
    "gi": 1024**3,
    "t": 1e12,
    "ti": 1024**4,
}


def parse_size(value: str | int) -> int:
    """Bytes in a size such as `16Gi`, `512Mi` or `2G`."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"expected a size such as 16Gi, got {value!r}")
    number, unit = match.groups()
    return int(float(number) * (_SIZE_UNITS[unit.lower()] if unit else 1))


def format_size(value: int) -> str:
    """A size in bytes as `16Gi`, `512Mi` or a plain number where neither unit divides it."""
    for unit, factor in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if value and value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)


class Resources(BaseModel):
    """CPU (vCPUs) and memory (a size such as 160Mi) an app takes or may take."""

    cpu: float = Field(ge=0)
    memory: str

    @field_validator("memory")
    @classmethod
    def _valid_size(cls, value: str) -> str:
        parse_size(value)
        return value

    @property
    def memory_bytes(self) -> int:
        """The memory size in bytes."""
        return parse_size(self.memory)


# Measured on the reference host (2026-12, bench/density.py): 150 idle Gradio 6 apps held 112 MiB
# each (p50), 126 MiB at most. An operator's flavors file replaces these with its own figures.
DEFAULT_IDLE_FOOTPRINT = {
    "gradio": Resources(cpu=0.01, memory="128Mi"),
    "streamlit": Resources(cpu=0.01, memory="128Mi"),
    "docker": Resources(cpu=0.01, memory="128Mi"),
}


class Flavor(BaseModel):
    name: str
    pretty_name: str
    cpu: float
    memory: str
    gpus: int = 0
    gpu_model: str | None = None
    gpu_memory: str | None = None
    pids: int = 4096
    cost_per_hour: float = 0.0
    sleep_after: str | None = Field(None, description="Default sleep time; None: never sleeps.")
    freeze_after: str | None = Field(None, description="Idle time before the app is frozen; None: never.")
    request: Resources | None = Field(
        None,
        description="What placement counts for one app of this flavor (default: its SDK's idle footprint).",
    )
    idle_footprint: dict[str, Resources] = Field(default_factory=lambda: dict(DEFAULT_IDLE_FOOTPRINT))

    @field_validator("memory", "gpu_memory")
    @classmethod
    def _valid_size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value

    @property
    def memory_bytes(self) -> int:
        """The flavor's memory limit in bytes."""
        return parse_size(self.memory)

    @property
    def is_gpu(self) -> bool:
        """Whether the flavor comes with GPUs; agents serve GPU flavors only when configured to."""
        return self.gpus > 0

    @property
    def default_sleep_seconds(self) -> int | None:
        """The flavor's default sleep time in seconds, or None when its apps never sleep."""
        return parse_duration(self.sleep_after) if self.sleep_after else None

    @property
    def freeze_seconds(self) -> int | None:
        """Idle seconds before an app of this flavor is frozen, or None when it never is."""
        return parse_duration(self.freeze_after) if self.freeze_after else None

    @property
    def limits(self) -> Resources:
        """The most an app of this flavor may take: its CPU and memory."""
        return Resources(cpu=self.cpu, memory=self.memory)

    def request_for(self, sdk: str) -> Resources:
        """What placement counts for an idle app of `sdk` on this flavor (requests, not limits)."""
        if self.request is not None:
            return self.request
        return self.idle_footprint.get(sdk) or max(
            self.idle_footprint.values(), key=lambda r: r.memory_bytes, default=self.limits
        )

    @property
    def accelerator_env(self) -> str:
        """The ACCELERATOR value apps see: the flavor name on GPU flavors, `none` otherwise."""
        return self.name if self.is_gpu else "none"

    def public(self) -> dict[str, Any]:
        """The flavor in the shape of the Hub's `GET /api/spaces/hardware`."""
        micro_usd_per_minute = round(self.cost_per_hour * 1_000_000 / 60)
        accelerator = None
        if self.is_gpu:
            accelerator = {
                "type": "gpu",
                "model": self.gpu_model,
                "quantity": str(self.gpus),
                "vram": self.gpu_memory,
                "manufacturer": "Nvidia",
            }
        return {
            "name": self.name,
            "prettyName": self.pretty_name,
            "cpu": f"{self.cpu:g} vCPU",
            "ram": self.memory.replace("Gi", " GB"),
            "accelerator": accelerator,
            "unitCostMicroUSD": micro_usd_per_minute,
            "unitCostUSD": round(self.cost_per_hour / 60, 6),
            "unitLabel": "minute",
        }


@lru_cache
def load_flavors(path: Path | None = None) -> dict[str, Flavor]:
    """Flavors from the operator's file (or the built-in table), by name."""
    raw = yaml.safe_load((path or DEFAULT_FLAVORS_FILE).read_text()) or {}
    entries = raw.get("flavors") or {}
    footprint = {
        **DEFAULT_IDLE_FOOTPRINT,
        **{sdk: Resources(**spec) for sdk, spec in (raw.get("idle_footprint") or {}).items()},
    }
    flavors = {
        name: Flavor(name=name, idle_footprint=footprint, **(spec or {})) for name, spec in entries.items()
    }
    if not flavors:
        raise ValueError(f"{path}: no flavors defined")
    return flavors
