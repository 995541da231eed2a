"""Chromium for the browser tests (Debian's, through Playwright)."""

from __future__ import annotations

import time

from playwright.sync_api import Page

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM = "/usr/bin/chromium"


def open_page(page: Page, url: str, attempts: int = 4) -> None:
    """Navigate, again if Chromium aborted the load with ERR_NETWORK_CHANGED.

    The tests' browser runs on the Docker host itself: every container started or removed adds or
    drops network interfaces, and Chromium drops in-flight requests when interfaces change. A
    visitor's browser, elsewhere, never sees that."""
    for attempt in range(attempts):
        failures: list[str] = []

        def on_failure(request, failures=failures) -> None:
            failures.append(request.failure or "")

        page.on("requestfailed", on_failure)
        try:
            page.goto(url, wait_until="load")
            # A measurement window, not a wait: requests the page starts just after `load` get
            # 500 ms to fail with ERR_NETWORK_CHANGED. There is no condition to wait for instead:
            # "networkidle" never comes on pages that hold an EventSource open (the log pages) or
            # poll the runtime (a space's page), and a load that nothing disturbs has no event.
            page.wait_for_timeout(500)
        finally:
            page.remove_listener("requestfailed", on_failure)
        if not any("ERR_NETWORK_CHANGED" in failure for failure in failures) or attempt == attempts - 1:
            return
        time.sleep(2)
