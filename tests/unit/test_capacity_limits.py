"""A flavor's limits never exceed what the host has: a 16 GiB flavor on a smaller host is limited
to the host's memory (in whole MiB), and its CPUs to the host's."""

from __future__ import annotations

import os

from spacehub.agent.capacity import Capacity, limits_on, physical_memory
from spacehub.queue.flavors import Flavor, parse_size

GIB = 1024**3


def flavor(cpu: float, memory: str) -> Flavor:
    return Flavor(name="big", pretty_name="Big", cpu=cpu, memory=memory)


def test_limits_are_clamped_to_the_host() -> None:
    host = Capacity(cpus=4, memory=12 * GIB + 12345, gpus=(), gpu_model="")
    limits = limits_on(host, flavor(cpu=1024, memory="16Gi"))
    expected = min(12 * GIB + 12345, physical_memory())
    assert parse_size(limits.memory) == expected - expected % 1024**2
    assert limits.cpu == float(os.cpu_count() or 1)


def test_limits_that_fit_are_the_flavors() -> None:
    host = Capacity(cpus=4, memory=physical_memory(), gpus=(), gpu_model="")
    limits = limits_on(host, flavor(cpu=0.5, memory="64Mi"))
    assert parse_size(limits.memory) == 64 * 1024**2 and limits.cpu == 0.5
