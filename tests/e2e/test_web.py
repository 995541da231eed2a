"""The web UI in Chromium: a visitor using a demo, a developer going from sign-up to a running
Streamlit space and back to nothing, an operator on the dashboard, and private spaces staying
private. Every page visited is also shot at phone and desktop width into test-artifacts/web/."""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, FrameLocator, Page, Request, expect

from tests.conftest import _start_platform
from tests.e2e.apps import gradio_files
from tests.utils.browser import open_page
from tests.utils.pages import PageClient
from tests.utils.platform import Platform
from tests.utils.waiting import wait_until

WIDTHS = (390, 1440)
RECORD_LOG = """
window.loggedLines = [];
new MutationObserver((changes) => changes.forEach((change) =>
    change.addedNodes.forEach((node) => window.loggedLines.push(node.textContent))
)).observe(document.getElementById("status-log"), {childList: true});
"""


@contextmanager
def agents_paused(hub: Platform) -> Iterator[None]:
    """Freeze every agent (and its workers) for a moment: jobs wait in the queue."""
    groups = [process.pid for key, process in hub.processes.items() if key in hub.agent_env]
    for group in groups:
        os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        for group in groups:
            os.killpg(group, signal.SIGCONT)


@pytest.fixture(scope="module")
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Platform]:
    """A platform of the module's own with two hosts, so the dashboard has both to show."""
    for platform in _start_platform(request, tmp_path_factory, redis_url, "web"):
        platform.start_agent(
            "agent-b", host_id=f"second-{platform.namespace}", flavors="cpu-basic,cpu-upgrade"
        )
        yield platform


@pytest.fixture(scope="module")
def demo(hub: Platform) -> str:
    """A public Gradio space, RUNNING."""
    space = hub.create_space("web-demo")
    hub.push(space, gradio_files("v1"))
    hub.wait_stage(space, "RUNNING")
    return space


def app_environment(hub: Platform, space: str) -> list[str]:
    """The environment of the space's newest running container."""
    subdomain = hub.info(space)["subdomain"]
    running = [c for c in hub.containers(all=False) if c.labels.get("spacehub.subdomain") == subdomain]
    newest = max(running, key=lambda c: c.attrs["Created"])
    return list(newest.attrs["Config"]["Env"])


class Visit:
    """One browser session on the hub: its page, the console errors of the hub's own pages, and
    screenshots at every width."""

    def __init__(self, browser, hub: Platform, shots: Path) -> None:
        self.hub = hub
        self.shots = shots
        self.context = browser.new_context(viewport={"width": WIDTHS[-1], "height": 900})
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.missing: set[str] = set()
        self.failed: list[str] = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("requestfailed", self._on_request_failed)

    def _on_console(self, message: ConsoleMessage) -> None:
        # Apps in the iframe log what they like; the hub's own pages must log no error.
        url = message.location.get("url", "")
        if message.type != "error" or not url.startswith(self.hub.url):
            return
        if url in self.missing and message.text.startswith("Failed to load resource"):
            return
        self.errors.append(f"{message.text} at {message.location}")

    def _on_request_failed(self, request: Request) -> None:
        self.failed.append(f"{request.url}: {request.failure}")

    def in_app(self, check: Callable[[FrameLocator], None]) -> None:
        """Run `check` on the app in the page's frame. Should it fail after Chromium dropped some
        of the page's requests with ERR_NETWORK_CHANGED (see `open_page`: containers starting on
        this host), the app did not get to load: reload the page and check again."""
        for attempt in range(3):
            try:
                check(self.page.frame_locator("iframe.app-frame"))
                return
            except AssertionError as exc:
                dropped = any("ERR_NETWORK_CHANGED" in failure for failure in self.failed)
                if not dropped or attempt == 2:
                    raise AssertionError(f"{exc}\nfailed requests: {self.failed}") from exc
            self.failed.clear()
            self.page.reload()

    def open(self, path: str) -> Page:
        open_page(self.page, self.hub.url + path)
        return self.page

    def open_missing(self, path: str) -> Page:
        """Open a page that must answer Not found."""
        self.missing.add(self.hub.url + path)
        response = self.page.goto(self.hub.url + path)
        assert response is not None and response.status == 404, response
        expect(self.page.get_by_role("heading", name="Not found")).to_be_visible()
        return self.page

    def shoot(self, name: str) -> None:
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            # The resize reached the page, then its layout settles within the width.
            self.page.wait_for_function("w => window.innerWidth === w", arg=width, timeout=5000)
            wait_until(
                lambda width=width: self.page.evaluate("document.documentElement.scrollWidth") <= width,
                timeout=5,
                interval=0.1,
                what=f"{name} to fit in {width} px",
                last=lambda: self.page.evaluate("document.documentElement.scrollWidth"),
            )
            self.page.screenshot(path=str(self.shots / f"{name}-{width}.png"), full_page=True)
        self.page.set_viewport_size({"width": WIDTHS[-1], "height": 900})

    def log_in(self, name: str, secret: str) -> None:
        self.open("/login")
        self.page.get_by_label("User name").fill(name)
        self.page.get_by_label("Password").fill(secret)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.get_by_role("status")).to_contain_text(f"Welcome, {name}")

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


def echo(frame: FrameLocator, text: str, expected: str) -> None:
    """Use the Gradio test app's echo endpoint."""
    frame.get_by_role("textbox").first.fill(text)
    frame.get_by_role("button", name="echo").click()
    expect(frame.get_by_role("textbox").nth(1)).to_have_value(expected, timeout=30_000)


def streamlit_greets(frame: FrameLocator) -> None:
    """The Streamlit starter has loaded and run its script."""
    expect(frame.get_by_role("heading", name="Hello Streamlit")).to_be_visible(timeout=60_000)
    expect(frame.get_by_text("Hello, spacehub!")).to_be_visible(timeout=60_000)


@pytest.fixture
def visit(browser, hub: Platform, artifacts: Path) -> Iterator[Visit]:
    shots = artifacts / "web"
    shots.mkdir(exist_ok=True)
    session = Visit(browser, hub, shots)
    yield session
    session.close()


def test_a_visitor_finds_a_demo_and_uses_it(hub: Platform, demo: str, visit: Visit) -> None:
    page = visit.open("/")
    expect(page.get_by_role("heading", name="Spaces")).to_be_visible()
    visit.shoot("gallery")
    page.get_by_label("Search", exact=True).fill("web-demo")
    page.get_by_role("button", name="Apply").click()
    card = page.locator(".card", has_text="E2E Gradio")
    expect(card).to_have_count(1)
    expect(card.locator(".badge")).to_have_text("Running")
    card.click()
    expect(page).to_have_url(re.compile(f"/spaces/{demo}$"))
    expect(page.locator("#stage-badge")).to_contain_text("Running")
    visit.in_app(lambda frame: echo(frame, "hello", "v1:hello"))
    visit.shoot("space-running")

    page.get_by_role("link", name="Files").click()
    expect(page.get_by_role("link", name="app.py")).to_be_visible()
    visit.shoot("space-files")
    page.get_by_role("link", name="app.py").click()
    expect(page.locator(".source")).to_contain_text("gr.Blocks()")
    page.get_by_role("link", name="Logs").click()
    expect(page.locator(".live-log").first).to_contain_text("==> Build succeeded", timeout=30_000)
    visit.shoot("space-logs")

    # Without an account: no settings tab, and the like button asks to log in.
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    page.get_by_role("link", name=re.compile("log in to like")).click()
    expect(page).to_have_url(re.compile("/login"))


def test_a_developer_goes_from_sign_up_to_a_running_streamlit_space_and_deletes_it(
    hub: Platform, visit: Visit
) -> None:
    page = visit.page
    name = "dev" + secrets.token_hex(3)
    visit.open("/join")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill("correct horse battery")
    visit.shoot("join")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile("/new-space"))
    expect(page.get_by_role("status")).to_contain_text(f"Welcome, {name}")

    page.get_by_label("Name", exact=True).fill("greeter")
    page.get_by_label(re.compile("Hello Streamlit")).check()
    visit.shoot("new-space")
    # The starter builds in a second or two from cached layers: the hosts wait until the page
    # records what its log box shows.
    with agents_paused(hub):
        page.get_by_role("button", name="Create space").click()
        expect(page).to_have_url(re.compile(f"/spaces/{name}/greeter\\?"))
        expect(page.get_by_role("status")).to_contain_text("it is building")
        expect(page.locator("#status-title")).to_have_text("Building")
        visit.shoot("space-building")
        page.evaluate(RECORD_LOG)

    # The build log streams into the page, then the app replaces it by itself.
    expect(page.locator("iframe.app-frame")).to_be_attached(timeout=600_000)
    expect(page.locator("#stage-badge")).to_contain_text("Running")
    shown = "".join(page.evaluate("window.loggedLines"))
    assert f"==> Building {name}/greeter" in shown and "==> Build succeeded" in shown, shown
    visit.in_app(streamlit_greets)

    # A secret: write-only, and the app restarts with it while the old one serves.
    page.get_by_role("link", name="Settings").click()
    with agents_paused(hub):
        page.locator("#secret-key").fill("API_KEY")
        page.locator("#secret-value").fill("s3cr3t-value")
        page.get_by_role("button", name="Save secret").click()
        expect(page.get_by_role("status")).to_contain_text("Secret API_KEY saved: the app restarts with it")
        expect(page.locator("section[aria-labelledby=s-secrets]")).to_contain_text("API_KEY")
        assert "s3cr3t-value" not in page.content()
        visit.shoot("space-settings")
        page.get_by_role("link", name="App").click()
        banner = page.locator("#update-banner")
        expect(banner).to_contain_text("A new version is building")
    expect(banner).to_contain_text("A new version is live", timeout=600_000)
    page.get_by_role("button", name="Reload the app").click()
    expect(banner).to_be_hidden()
    visit.in_app(streamlit_greets)
    assert "API_KEY=s3cr3t-value" in app_environment(hub, f"{name}/greeter")

    # Deleting asks for the exact name.
    page.get_by_role("link", name="Settings").click()
    page.get_by_label(re.compile("to confirm")).fill("greeter")
    page.get_by_role("button", name="Delete space").click()
    expect(page.get_by_role("alert")).to_contain_text(f"type {name}/greeter exactly")
    page.get_by_label(re.compile("to confirm")).fill(f"{name}/greeter")
    page.get_by_role("button", name="Delete space").click()
    expect(page).to_have_url(re.compile(f"/{name}\\?"))
    expect(page.get_by_role("status")).to_contain_text(f"{name}/greeter is deleted")
    visit.shoot("profile")
    visit.open_missing(f"/spaces/{name}/greeter")


def hosts_of(hub: Platform, space: str) -> list[str]:
    with hub.client() as client:
        hosts = client.get("/api/admin/hosts").json()
    return [host["host"] for host in hosts for a in host["allocations"] if a["space"] == space]


def test_an_operator_sees_both_hosts_moves_and_stops_a_space(hub: Platform, demo: str, visit: Visit) -> None:
    page = visit.page
    space = hub.create_space("web-stop-me")
    hub.push(space, gradio_files("v1"))
    hub.wait_stage(space, "RUNNING")

    visit.log_in("admin", hub.admin_token)
    visit.open("/admin")
    for host in (f"host-{hub.namespace}", f"second-{hub.namespace}"):
        card = page.get_by_role("article", name=f"Host {host}")
        expect(card).to_contain_text("online")
        expect(card.get_by_role("meter", name="CPU requested")).to_be_visible()
        expect(card.get_by_role("meter", name="Memory requested")).to_be_visible()
        expect(card.get_by_label("Spaces per tier")).to_contain_text("serving")
    expect(page.locator("#hosts")).to_contain_text(space)
    visit.shoot("admin")

    # Move: the app starts on the other host and serves all along.
    (origin,) = hosts_of(hub, space)
    page.locator("#spaces tr", has_text=space).get_by_role("button", name=f"Move {space}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{space} is starting on another host")
    deadline = time.monotonic() + 300
    while hosts_of(hub, space) != [
        h for h in (f"host-{hub.namespace}", f"second-{hub.namespace}") if h != origin
    ]:
        assert time.monotonic() < deadline, hosts_of(hub, space)
        assert httpx.get(hub.app_url(space) + "/config", trust_env=False).status_code == 200
        time.sleep(0.5)
    assert hub.wait_stage(space, "RUNNING")

    visit.open("/admin")
    row = page.locator("#spaces tr", has_text=space)
    row.get_by_role("button", name=f"Stop {space}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{space} stopped")
    expect(page.locator("#spaces tr", has_text=space).locator(".badge")).to_have_text("Paused")
    assert hub.runtime(space)["stage"] == "PAUSED"
    deadline = time.monotonic() + 60
    while hub.instances_of(space):
        assert time.monotonic() < deadline, "the stopped space still runs"
        time.sleep(1)
    visit.open(f"/spaces/{space}")
    expect(page.locator("#status-panel")).to_contain_text("Restart it from the settings")


def test_a_private_space_is_hidden_from_visitors(hub: Platform, visit: Visit, browser) -> None:
    space = hub.create_space("web-secret", private=True)
    hub.push(space, gradio_files("v1"))
    hub.wait_stage(space, "RUNNING")
    app = hub.app_url(space)

    page = visit.open_missing(f"/spaces/{space}")
    visit.shoot("not-found")
    assert visit.open("/spaces?q=web-secret").locator(".card").count() == 0
    open_page(page, app)
    assert "E2E Gradio" not in page.content()
    assert httpx.get(app + "/config", trust_env=False).status_code == 404

    # Its owner sees the page and the app, through a signed address the app never gets a token from.
    visit.log_in("admin", hub.admin_token)
    visit.open(f"/spaces/{space}")
    visit.in_app(lambda frame: echo(frame, "private", "v1:private"))


def test_a_tossed_csrf_cookie_cannot_post_for_a_visitor(hub: Platform, visit: Visit) -> None:
    """An app on a sibling subdomain of the hub (same site: its posts carry the visitor's session)
    sets the hub's CSRF cookie to a seed of its own, and submits a form with the token of that
    seed: refused, because the token was made for another session."""
    with PageClient(hub.url) as attacker:
        token = attacker.csrf("/login")
        seed = attacker.http.cookies["spacehub-csrf"]
    visit.log_in("admin", hub.admin_token)
    visit.context.add_cookies([{"name": "spacehub-csrf", "value": seed, "url": hub.url}])
    page = visit.open("/spaces")
    visit.missing.add(f"{hub.url}/settings/tokens")  # refused: the console reports it, as it should
    with page.expect_navigation():
        page.evaluate(
            """([action, token]) => {
                const form = Object.assign(document.createElement("form"), {method: "post", action});
                for (const [name, value] of [["csrf", token], ["name", "stolen"]]) {
                    form.append(Object.assign(document.createElement("input"), {name, value}));
                }
                document.body.append(form);
                form.submit();
            }""",
            [f"{hub.url}/settings/tokens", token],
        )
    expect(page.locator("main")).to_contain_text("the form expired or came from another site")
    visit.open("/settings/tokens")
    expect(page.locator("main")).not_to_contain_text("stolen")
