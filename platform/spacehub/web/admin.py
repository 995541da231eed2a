"""The operators' dashboard: hosts, queues, every space and build, users and tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from spacehub.controller import admin
from spacehub.controller.accounts import revoke_token
from spacehub.controller.admin import queue_views, retry_failed_job
from spacehub.controller.hosts import HostView, host_views, usage_samples
from spacehub.controller.listing import last_visits
from spacehub.controller.logs import read_persisted
from spacehub.controller.spaces import move, pause, restart
from spacehub.db.models import BuildStatus, Space, TokenRole
from spacehub.errors import BadRequest, NotFound, SpacehubError
from spacehub.web.deps import Browser, BrowserDep

router = APIRouter(prefix="/admin", include_in_schema=False)

HISTORY_POINTS = 120


def usage_history(browser: Browser, host: str) -> dict[str, str] | None:
    """CPU and memory allocation over the last hour, as SVG polyline points (240 x 60)."""
    samples = usage_samples(browser.ctx, host, HISTORY_POINTS)
    if len(samples) < 2:
        return None
    now = time.time()

    def points(field: str) -> str:
        return " ".join(
            f"{240 - min(240, (now - s['t']) / 15):.1f},{60 - 0.6 * s[field]:.1f}" for s in samples
        )

    return {"cpu": points("cpu"), "mem": points("mem")}


def host_rows(browser: Browser, views: list[HostView]) -> list[dict[str, Any]]:
    """The dashboard's host rows: capacity, use, recent history and allocations, or just offline."""
    rows: list[dict[str, Any]] = []
    for view in views:
        record = view.record
        if record is None:
            rows.append({"host": view.host, "online": False})
            continue
        rows.append(
            {
                **asdict(record),
                "online": True,
                "used_cpu": record.used_cpu,
                "used_memory": record.used_memory,
                "real_memory": record.real_memory,
                "used_gpus": record.used_gpus,
                "history": usage_history(browser, view.host),
                "allocations": [{"space": app.space, **asdict(app.allocation)} for app in view.apps],
            }
        )
    return rows


def space_rows(browser: Browser, spaces: list[Space], views: list[HostView]) -> list[dict[str, Any]]:
    """The dashboard's space rows: stage, host, hardware, last visit and the app's allocation."""
    activity = last_visits(browser.ctx, [s.repo_id for s in spaces])
    apps = {app.allocation.space_id: app.allocation for view in views for app in view.apps}
    return [
        {
            "id": s.repo_id,
            "name": s.repo.full_name,
            "stage": s.stage,
            "host": s.host_id,
            "flavor": s.hardware,
            "started_at": s.started_at,
            "activity": a,
            "app": apps.get(s.repo_id),
        }
        for s, a in zip(spaces, activity, strict=True)
    ]


def build_rows(browser: Browser, names: dict[int, str]) -> list[dict[str, Any]]:
    """The dashboard's rows for the latest 50 builds, with their outcome and duration."""
    rows = []
    for build in admin.recent_builds(browser.session):
        duration = None
        if build.started_at and build.finished_at:
            duration = f"{(build.finished_at - build.started_at).total_seconds():.0f} s"
        kind = {BuildStatus.SUCCEEDED: "ok", BuildStatus.FAILED: "error"}.get(build.status, "busy")
        rows.append(
            {
                "id": build.id,
                "space": names.get(build.space_id, "?"),
                "sha": build.sha,
                "status": build.status.value,
                "kind": kind if build.status.is_active or kind != "busy" else "idle",
                "error": build.error_message,
                "host": build.host_id,
                "created": build.created_at,
                "duration": duration,
            }
        )
    return rows


def dashboard(browser: Browser, **extra: Any) -> Response:
    """The admin dashboard (admins only): hosts, queues, spaces, builds, accounts and tokens."""
    browser.require_admin()
    session = browser.session
    spaces = admin.all_spaces(session)
    names = {s.repo_id: s.repo.full_name for s in spaces}
    views = host_views(browser.ctx, names)
    return browser.render(
        "admin/dashboard.html",
        hosts=host_rows(browser, views),
        queues=queue_views(browser.ctx),
        spaces=space_rows(browser, spaces, views),
        builds=build_rows(browser, names),
        accounts=admin.all_accounts(session),
        tokens=admin.all_tokens(session, newest=100),
        **extra,
    )


@router.get("", response_class=HTMLResponse)
def admin_page(browser: BrowserDep) -> Response:
    """The admin dashboard; visitors who are not signed in go to the login page first."""
    if browser.account is None:
        return browser.redirect("/login?next=/admin")
    return dashboard(browser, created=None)


@router.get("/builds/{build_id}/log", response_class=HTMLResponse)
def build_log(build_id: int, browser: BrowserDep) -> Response:
    """The persisted log of one build, for admins."""
    browser.require_admin()
    build, space = admin.build_of(browser.session, build_id)
    return browser.render(
        "admin/build_log.html",
        build=build,
        space_name=space.repo.full_name,
        lines=read_persisted(browser.ctx.settings, build_id) or [],
    )


@router.post("/spaces/{space_id}/{action}")
async def space_action(space_id: int, action: str, browser: BrowserDep) -> Response:
    """Stop (pause), restart or move any space to another host, for admins."""
    browser.require_admin()
    await browser.check_form()
    space = admin.space_by_id(browser.session, space_id)
    name = space.repo.full_name
    try:
        if action == "stop":
            pause(browser.ctx, browser.session, space)
            notice = f"{name} stopped (paused until someone restarts it)."
        elif action == "restart":
            restart(browser.ctx, browser.session, space)
            notice = f"{name} is restarting."
        elif action == "move":
            origin = space.host_id
            move(browser.ctx, browser.session, space)
            notice = f"{name} is starting on another host; it serves from {origin} until then."
        else:
            raise BadRequest(f"unknown action {action!r}")
    except SpacehubError as exc:
        browser.session.rollback()
        return browser.redirect("/admin#spaces", error=exc.message)
    return browser.redirect("/admin#spaces", notice=notice)


@router.post("/jobs/{job_id}/retry")
async def retry_job(job_id: str, browser: BrowserDep) -> Response:
    """Queue a failed deploy job again."""
    browser.require_admin()
    form = await browser.check_form()
    return await run_action(
        browser,
        "/admin#queues",
        lambda: retry_failed_job(browser.ctx, str(form.get("flavor", "")), job_id),
        f"{job_id} is queued again.",
    )


@router.post("/users")
async def create_user(browser: BrowserDep) -> Response:
    """Create a user, with a password or none (then they sign in with a token)."""
    browser.require_admin()
    form = await browser.check_form()
    name = str(form.get("name", "")).strip()
    return await run_action(
        browser,
        "/admin#people",
        lambda: admin.create_user(
            browser.session, name, is_admin=bool(form.get("is_admin")), password=str(form.get("password", ""))
        ),
        f"User {name} created.",
    )


@router.post("/orgs")
async def create_org(browser: BrowserDep) -> Response:
    """Create an organization."""
    browser.require_admin()
    form = await browser.check_form()
    name = str(form.get("name", "")).strip()
    return await run_action(
        browser,
        "/admin#people",
        lambda: admin.create_org(browser.session, name),
        f"Organization {name} created.",
    )


@router.post("/members")
async def add_member(browser: BrowserDep) -> Response:
    """Make a user a member of an organization, with the role the form names."""
    browser.require_admin()
    form = await browser.check_form()
    org, user, role = (str(form.get(key, "")) for key in ("org", "user", "role"))
    return await run_action(
        browser,
        "/admin#people",
        lambda: admin.add_member(browser.session, org, user, role or None),
        f"{user} is a member of {org}.",
    )


@router.post("/users/{name}/{action}")
async def user_action(name: str, action: str, browser: BrowserDep) -> Response:
    """Disable or enable a user's account."""
    acting = browser.require_admin()
    await browser.check_form()
    if action not in ("disable", "enable"):
        raise NotFound(f"no action {action!r}")
    return await run_action(
        browser,
        "/admin#people",
        lambda: admin.set_disabled(browser.session, acting, name, action == "disable"),
        f"{name} {action}d.",
    )


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(browser: BrowserDep) -> Response:
    """Issue a token for a user and show it on the dashboard, once."""
    browser.require_admin()
    form = await browser.check_form()
    user = str(form.get("user", ""))
    role = TokenRole.READ if form.get("role") == "read" else TokenRole.WRITE
    try:
        _token, plaintext = admin.issue_token_for(
            browser.session, user, str(form.get("name", "token"))[:100], role
        )
    except SpacehubError as exc:
        browser.session.rollback()
        return browser.redirect("/admin#people", error=exc.message)
    return dashboard(
        browser,
        created=plaintext,
        created_for=user,
        notice=f"Token created for {user}; copy it now, it is shown once.",
    )


@router.post("/tokens/{token_id}/revoke")
async def revoke(token_id: int, browser: BrowserDep) -> Response:
    """Revoke a token; it stops working at once."""
    browser.require_admin()
    await browser.check_form()
    token = revoke_token(browser.session, token_id)
    return browser.redirect("/admin#people", notice=f"Token {token.name} of {token.account.name} revoked.")


async def run_action(browser: Browser, back: str, action: Callable[[], object], notice: str) -> Response:
    """Do an operator's action and go back to the dashboard, saying what happened or why not."""
    try:
        action()
    except SpacehubError as exc:
        browser.session.rollback()
        return browser.redirect(back, error=exc.message)
    return browser.redirect(back, notice=notice)
