"""The operators' dashboard: hosts, queues, every space and build, users and tokens."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import select

from spacehub.controller.accounts import create_account, find_account, issue_token, revoke_token
from spacehub.controller.buildlogs import read_persisted
from spacehub.controller.hosts import HostView, host_views
from spacehub.controller.spaces import move, pause, restart
from spacehub.db.models import Account, AccountKind, Build, BuildStatus, Membership, Space, Token, TokenRole
from spacehub.errors import BadRequest, NotFound, SpacehubError
from spacehub.web.deps import Browser, BrowserDep
from spacehub.web.sessions import hash_password

router = APIRouter(prefix="/admin", include_in_schema=False)

HISTORY_POINTS = 120


def usage_history(browser: Browser, host: str) -> dict[str, str] | None:
    """CPU and memory allocation over the last hour, as SVG polyline points (240 x 60)."""
    raw = browser.ctx.redis.lrange(browser.ctx.keys.usage(host), 0, HISTORY_POINTS - 1)
    samples = [json.loads(item) for item in reversed(raw)]
    if len(samples) < 2:
        return None
    now = time.time()

    def points(field: str) -> str:
        return " ".join(
            f"{240 - min(240, (now - s['t']) / 15):.1f},{60 - 0.6 * s[field]:.1f}" for s in samples
        )

    return {"cpu": points("cpu"), "mem": points("mem")}


def host_rows(browser: Browser, views: list[HostView]) -> list[dict[str, Any]]:
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


def queue_rows(browser: Browser) -> list[dict[str, Any]]:
    connection = browser.ctx.redis
    rows = []
    for flavor in browser.ctx.flavors:
        queue = browser.ctx.queue(flavor)
        running = []
        for job_id in StartedJobRegistry(queue=queue).get_job_ids():
            try:
                running.append({"id": job_id, "worker": Job.fetch(job_id, connection=connection).worker_name})
            except NoSuchJobError:
                continue
        failed = []
        for job_id in FailedJobRegistry(queue=queue).get_job_ids()[-10:]:
            try:
                result = Job.fetch(job_id, connection=connection).latest_result()
            except NoSuchJobError:
                continue
            error = (result.exc_string or "").strip().splitlines()[-1] if result and result.exc_string else ""
            failed.append({"id": job_id, "error": error})
        workers = Worker.count(queue=queue)
        rows.append(
            {
                "flavor": flavor,
                "workers": workers,
                "waiting": queue.count,
                "running": running,
                "failed": failed,
            }
        )
    return rows


def space_rows(browser: Browser, spaces: list[Space], views: list[HostView]) -> list[dict[str, Any]]:
    ids = [str(s.repo_id) for s in spaces]
    activity = browser.ctx.redis.zmscore(browser.ctx.keys.activity, ids) if ids else []
    apps = {app.allocation.space_id: app.allocation for view in views for app in view.apps}
    return [
        {
            "id": s.repo_id,
            "name": s.repo.full_name,
            "stage": s.stage,
            "host": s.host_id,
            "flavor": s.hardware,
            "started_at": s.started_at,
            "activity": float(a) if a is not None else None,
            "app": apps.get(s.repo_id),
        }
        for s, a in zip(spaces, activity, strict=True)
    ]


def build_rows(browser: Browser, names: dict[int, str]) -> list[dict[str, Any]]:
    builds = browser.session.scalars(select(Build).order_by(Build.id.desc()).limit(50))
    rows = []
    for build in builds:
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
    browser.require_admin()
    session = browser.session
    spaces = list(session.scalars(select(Space)))
    names = {s.repo_id: s.repo.full_name for s in spaces}
    views = host_views(browser.ctx, names)
    return browser.render(
        "admin/dashboard.html",
        hosts=host_rows(browser, views),
        queues=queue_rows(browser),
        spaces=space_rows(browser, spaces, views),
        builds=build_rows(browser, names),
        accounts=list(session.scalars(select(Account).order_by(Account.name))),
        tokens=list(session.scalars(select(Token).order_by(Token.id.desc()).limit(100))),
        **extra,
    )


@router.get("", response_class=HTMLResponse)
def admin_page(browser: BrowserDep) -> Response:
    if browser.account is None:
        return browser.redirect("/login?next=/admin")
    return dashboard(browser, created=None)


@router.get("/builds/{build_id}/log", response_class=HTMLResponse)
def build_log(build_id: int, browser: BrowserDep) -> Response:
    browser.require_admin()
    build = browser.session.get(Build, build_id)
    space = browser.session.get(Space, build.space_id) if build else None
    if build is None or space is None:
        raise NotFound(f"no build {build_id}")
    return browser.render(
        "admin/build_log.html",
        build=build,
        space_name=space.repo.full_name,
        lines=read_persisted(browser.ctx.settings, build_id) or [],
    )


@router.post("/spaces/{space_id}/{action}")
async def space_action(space_id: int, action: str, browser: BrowserDep) -> Response:
    browser.require_admin()
    await browser.check_form()
    space = browser.session.get(Space, space_id)
    if space is None:
        raise NotFound(f"no space {space_id}")
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
    browser.require_admin()
    form = await browser.check_form()
    flavor = str(form.get("flavor", ""))
    if flavor not in browser.ctx.flavors:
        raise BadRequest(f"unknown flavor {flavor!r}")
    queue: Queue = browser.ctx.queue(flavor)
    try:
        FailedJobRegistry(queue=queue).requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation):
        return browser.redirect("/admin#queues", error=f"{job_id} is no longer among the failed jobs.")
    return browser.redirect("/admin#queues", notice=f"{job_id} is queued again.")


@router.post("/users")
async def create_user(browser: BrowserDep) -> Response:
    browser.require_admin()
    form = await browser.check_form()
    password = str(form.get("password", ""))
    try:
        account = create_account(
            browser.session,
            str(form.get("name", "")).strip(),
            is_admin=bool(form.get("is_admin")),
            password_hash=hash_password(password) if password else None,
        )
    except SpacehubError as exc:
        browser.session.rollback()
        return browser.redirect("/admin#people", error=exc.message)
    return browser.redirect("/admin#people", notice=f"User {account.name} created.")


@router.post("/orgs")
async def create_org(browser: BrowserDep) -> Response:
    browser.require_admin()
    form = await browser.check_form()
    try:
        org = create_account(browser.session, str(form.get("name", "")).strip(), kind=AccountKind.ORG)
    except SpacehubError as exc:
        browser.session.rollback()
        return browser.redirect("/admin#people", error=exc.message)
    return browser.redirect("/admin#people", notice=f"Organization {org.name} created.")


@router.post("/members")
async def add_member(browser: BrowserDep) -> Response:
    browser.require_admin()
    form = await browser.check_form()
    org, user = (
        find_account(browser.session, str(form.get("org", ""))),
        find_account(browser.session, str(form.get("user", ""))),
    )
    if org is None or org.kind != AccountKind.ORG or user is None or user.kind != AccountKind.USER:
        return browser.redirect("/admin#people", error="name an existing organization and user")
    if browser.session.get(Membership, (org.id, user.id)) is None:
        browser.session.add(Membership(org_id=org.id, user_id=user.id, role="write"))
    return browser.redirect("/admin#people", notice=f"{user.name} is a member of {org.name}.")


@router.post("/users/{name}/{action}")
async def user_action(name: str, action: str, browser: BrowserDep) -> Response:
    admin = browser.require_admin()
    await browser.check_form()
    account = find_account(browser.session, name)
    if account is None or account.kind != AccountKind.USER or action not in ("disable", "enable"):
        raise NotFound(f"no user {name}")
    if account.id == admin.id:
        return browser.redirect("/admin#people", error="you cannot disable yourself")
    account.disabled = action == "disable"
    account.session_epoch += 1  # ends the user's browser sessions
    return browser.redirect(
        "/admin#people", notice=f"{name} {'disabled' if account.disabled else 'enabled'}."
    )


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(browser: BrowserDep) -> Response:
    browser.require_admin()
    form = await browser.check_form()
    account = find_account(browser.session, str(form.get("user", "")))
    if account is None or account.kind != AccountKind.USER:
        return browser.redirect("/admin#people", error="no such user")
    role = TokenRole.READ if form.get("role") == "read" else TokenRole.WRITE
    _token, plaintext = issue_token(browser.session, account, str(form.get("name", "token"))[:100], role)
    return dashboard(
        browser,
        created=plaintext,
        created_for=account.name,
        notice=f"Token created for {account.name}; copy it now, it is shown once.",
    )


@router.post("/tokens/{token_id}/revoke")
async def revoke(token_id: int, browser: BrowserDep) -> Response:
    browser.require_admin()
    await browser.check_form()
    token = revoke_token(browser.session, token_id)
    return browser.redirect("/admin#people", notice=f"Token {token.name} of {token.account.name} revoked.")
