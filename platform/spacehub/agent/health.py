"""Is an app ready for visitors? One probe per SDK, the one its own tooling trusts; and, when it
will not be, why not."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from spacehub.agent.drivers.base import Instance, InstanceState, RuntimeDriver
from spacehub.queue.flavors import format_size, parse_size

# Gradio has no health route: /config answers once launch() serves (401 when the app has auth).
# Streamlit's /_stcore/health is what its own Docker template checks. Any HTTP answer will do for
# a Dockerfile app: it is listening.
_PROBES = {"gradio": ("/config", {200, 401}), "streamlit": ("/_stcore/health", {200})}
POLL_SECONDS = 0.1


def probe_url(sdk: str, upstream: str, root_path: str) -> tuple[str, set[int] | None]:
    """The URL to probe an app's health at, and the status codes that mean healthy (None: any answer)."""
    path, accepted = _PROBES.get(sdk, ("/", None))
    prefix = root_path.rstrip("/") if sdk == "streamlit" else ""
    return f"http://{upstream}{prefix}{path}", accepted


def is_healthy(client: httpx.Client, sdk: str, upstream: str, root_path: str = "") -> bool:
    """Whether the app answers its SDK's health probe within 3 seconds."""
    url, accepted = probe_url(sdk, upstream, root_path)
    try:
        response = client.get(url, timeout=3.0)
    except httpx.HTTPError:
        return False
    return accepted is None or response.status_code in accepted


@dataclass(frozen=True)
class Outcome:
    """How a start ended: healthy, or the instance as last seen (None: it disappeared)."""

    healthy: bool
    last: Instance | None
    timed_out: bool = False


def wait_until_healthy(driver: RuntimeDriver, instance: Instance, timeout: float) -> Outcome:
    """Poll the app until its SDK's probe answers, it exits, or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    current: Instance | None = instance
    with httpx.Client(trust_env=False) as client:
        while time.monotonic() < deadline:
            current = driver.poll(instance.id)
            if current is None or current.state == InstanceState.EXITED:
                return Outcome(False, current)
            if current.upstream and is_healthy(client, current.sdk, current.upstream, current.root_path):
                return Outcome(True, current)
            time.sleep(POLL_SECONDS)
    return Outcome(False, current, timed_out=True)


def exit_reason(instance: Instance) -> str:
    """What ended an app, in words: its exit code, or the kernel's out-of-memory kill and the limit."""
    if instance.oom_killed:
        limit = parse_size(instance.labels.get("spacehub.memory_limit") or 0)
        return f"ran out of memory (limit {format_size(limit)})" if limit else "ran out of memory"
    if instance.exit_code == 137:
        return "was killed (exit code 137)"
    return f"exited with code {instance.exit_code}"
