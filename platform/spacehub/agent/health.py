"""Is an app ready for visitors? One probe per SDK, the one its own tooling trusts."""

from __future__ import annotations

import httpx

# Gradio has no health route: /config answers once launch() serves (401 when the app has auth).
# Streamlit's /_stcore/health is what its own Docker template checks. Any HTTP answer will do for
# a Dockerfile app: it is listening.
_PROBES = {"gradio": ("/config", {200, 401}), "streamlit": ("/_stcore/health", {200})}


def probe_url(sdk: str, upstream: str, root_path: str) -> tuple[str, set[int] | None]:
    path, accepted = _PROBES.get(sdk, ("/", None))
    prefix = root_path.rstrip("/") if sdk == "streamlit" else ""
    return f"http://{upstream}{prefix}{path}", accepted


def is_healthy(client: httpx.Client, sdk: str, upstream: str, root_path: str = "") -> bool:
    url, accepted = probe_url(sdk, upstream, root_path)
    try:
        response = client.get(url, timeout=3.0)
    except httpx.HTTPError:
        return False
    return accepted is None or response.status_code in accepted
