"""What developers do in the browser: create a space, change its settings, like, duplicate, delete.
Every action answers with the page and a sentence saying what happened (or what went wrong)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from spacehub.controller.accounts import writable_namespaces
from spacehub.controller.domains import domain_status, remove_custom_domain, set_custom_domain
from spacehub.controller.repos import create_repo, toggle_like
from spacehub.controller.serializers import secrets_json, variables_json
from spacehub.controller.space_repos import create_from_starter, duplicate_space, remove_repo, starters
from spacehub.controller.space_settings import (
    change_hardware,
    check_hardware,
    delete_environment,
    put_environment,
    set_private,
)
from spacehub.controller.spaces import (
    SDKS,
    pause,
    publish,
    restart,
    set_sleep_time,
)
from spacehub.db.models import RepoType, Space
from spacehub.errors import BadRequest, Forbidden, SpacehubError
from spacehub.web.browse import space_context
from spacehub.web.deps import Browser, BrowserDep
from spacehub.web.render import profile_url

router = APIRouter(include_in_schema=False)


def owners_of(browser: Browser) -> list[str]:
    """The namespaces the user may create spaces in: their own and their organizations'."""
    return writable_namespaces(browser.session, browser.require_account())


def new_space_form(browser: Browser, status: int = 200, problem: str | None = None, **form: Any) -> Response:
    """The new-space page: owners, starters, SDKs and hardware to pick; a refused attempt refills `form`."""
    return browser.render(
        "new_space.html",
        status_code=status,
        problem=problem,
        owners=owners_of(browser),
        form=form,
        starters=starters(browser.ctx.settings.templates_dir),
        sdks=SDKS,
        flavors=list(browser.ctx.flavors.values()),
    )


@router.get("/new-space", response_class=HTMLResponse)
def new_space_page(browser: BrowserDep) -> Response:
    """The new-space page (signed-in users only; others go to the login page first)."""
    if browser.account is None:
        return browser.redirect("/login?next=/new-space")
    return new_space_form(browser)


@router.post("/new-space")
async def new_space(browser: BrowserDep) -> Response:
    """Create a space, from a starter (it builds at once) or empty; if refused, the form with the problem."""
    browser.require_account()
    form = await browser.check_form()
    owner, name = str(form.get("owner", "")), str(form.get("name", "")).strip()
    template, hardware = str(form.get("template", "")), str(form.get("hardware", "cpu-basic"))
    private = form.get("visibility") == "private"
    try:
        check_hardware(browser.ctx, hardware)
        if template:
            repo = create_from_starter(
                browser.ctx,
                browser.session,
                browser.principal,
                owner=owner,
                name=name,
                starter=template,
                hardware=hardware,
                private=private,
            )
        else:
            repo = create_repo(
                browser.session,
                browser.ctx.settings,
                browser.principal,
                type=RepoType.SPACE,
                owner=owner,
                name=name,
                private=private,
                sdk=str(form.get("sdk", "gradio")),
                hardware=hardware,
            )
            assert repo.space is not None
            publish(browser.ctx, repo.space)
    except SpacehubError as exc:
        browser.session.rollback()
        return new_space_form(
            browser,
            400,
            owner=owner,
            name=name,
            template=template,
            hardware=hardware,
            sdk=str(form.get("sdk", "")),
            visibility="private" if private else "public",
            problem=exc.message,
        )
    message = "Space created: it is building." if template else "Space created: push your app to it."
    return browser.redirect(f"/spaces/{repo.full_name}", notice=message)


def writable(browser: Browser, owner: str, name: str) -> dict[str, Any]:
    """The space page's context, if the user may change the space's settings; Forbidden otherwise."""
    context = space_context(browser, owner, name)
    if not context["can_write"]:
        raise Forbidden("only the space's owners can change its settings")
    return context


@router.get("/spaces/{owner}/{name}/settings", response_class=HTMLResponse)
def settings_page(owner: str, name: str, browser: BrowserDep) -> Response:
    """The space's settings page: hardware, sleep time, visibility, secrets and variables."""
    if browser.account is None:
        return browser.redirect(f"/login?next=/spaces/{owner}/{name}/settings")
    context = writable(browser, owner, name)
    space: Space = context["space"]
    domain = domain_status(browser.ctx, space.custom_domain) if space.custom_domain else None
    return browser.render(
        "space_settings.html",
        tab="settings",
        domain=domain,
        flavors=list(browser.ctx.flavors.values()),
        secrets=secrets_json(browser.session, space),
        variables=variables_json(browser.session, space),
        **context,
    )


@router.post("/spaces/{owner}/{name}/settings/{action}")
async def settings_action(owner: str, name: str, action: str, browser: BrowserDep) -> Response:
    """Apply one settings form, then go back to the settings (or the space, or the profile after a delete)."""
    context = writable(browser, owner, name)
    form = await browser.check_form()
    space: Space = context["space"]
    page = f"/spaces/{space.repo.full_name}"
    try:
        notice = apply_setting(browser, space, action, form)
    except SpacehubError as exc:
        browser.session.rollback()
        return browser.redirect(f"{page}/settings", error=exc.message)
    if action == "delete":
        return browser.redirect(profile_url(browser.require_account().name), notice=notice)
    return browser.redirect(page if action in ("restart", "factory") else f"{page}/settings", notice=notice)


Setting = Callable[["Browser", Space, dict[str, Any]], str]


def set_hardware(browser: Browser, space: Space, form: dict[str, Any]) -> str:
    """Move the space to the form's hardware flavor; it restarts on it."""
    flavor = str(form.get("flavor", ""))
    if not change_hardware(browser.ctx, browser.session, space, flavor):
        return f"The space already runs on {flavor}."
    return f"Hardware changed to {browser.ctx.flavors[flavor].pretty_name}: the app restarts on it."


def set_sleep(browser: Browser, space: Space, form: dict[str, Any]) -> str:
    """Set the space's sleep time from the form: seconds, -1 for never, blank for the flavor's default."""
    raw = str(form.get("seconds", "")).strip()
    if raw and not raw.lstrip("-").isdigit():
        raise BadRequest(f"sleep time is a whole number of seconds, or -1 for never, not {raw!r}")
    set_sleep_time(browser.ctx, space, int(raw) if raw else None)
    return "Sleep time saved."


def set_visibility(browser: Browser, space: Space, form: dict[str, Any]) -> str:
    """Make the space public or private, as the form says."""
    set_private(browser.ctx, space.repo, form.get("visibility") == "private")
    return f"The space is now {'private' if space.repo.private else 'public'}."


def set_domain(browser: Browser, space: Space, form: dict[str, Any]) -> str:
    """Serve the app at the form's custom domain too, or at none when it is empty."""
    domain = str(form.get("domain", "")).strip()
    if not domain:
        remove_custom_domain(browser.ctx, space)
        return "The custom domain is removed."
    status = set_custom_domain(browser.ctx, browser.session, space, domain)
    return f"The app is served at {status.domain} too. {status.message}."


def environment_setter(kind: str, what: str) -> Setting:
    """A setting that adds or updates a secret or a variable (`kind`), named `what` in its notice."""

    def put(browser: Browser, space: Space, form: dict[str, Any]) -> str:
        key, value = str(form.get("key", "")).strip(), str(form.get("value", ""))
        put_environment(browser.ctx, browser.session, space, kind, key, value)
        return f"{what} {key} saved: the app restarts with it."

    return put


def environment_remover(kind: str) -> Setting:
    """A setting that removes a secret or a variable (`kind`)."""

    def delete(browser: Browser, space: Space, form: dict[str, Any]) -> str:
        key = str(form.get("key", ""))
        delete_environment(browser.ctx, browser.session, space, kind, key)
        return f"{key} deleted: the app restarts without it."

    return delete


def restart_space(browser: Browser, space: Space, form: dict[str, Any]) -> str:
    """Deploy the space's commit again, with the build cache."""
    restart(browser.ctx, browser.session, space)
    return "Restarting."


def factory_rebuild(browser: Browser, space: Space, form: dict[str, Any]) -> str:
    """Deploy the space's commit again, rebuilding everything without cache."""
    restart(browser.ctx, browser.session, space, factory=True)
    return "Factory rebuild started: everything builds again, without cache."


def pause_space(browser: Browser, space: Space, form: dict[str, Any]) -> str:
    """Stop the app until its owner restarts it."""
    pause(browser.ctx, browser.session, space)
    return "Paused: the app stays stopped until you restart it."


def delete_space(browser: Browser, space: Space, form: dict[str, Any]) -> str:
    """Delete the space, once the form repeats its full name to confirm."""
    name = space.repo.full_name
    if str(form.get("confirm", "")).strip() != name:
        raise BadRequest(f"type {name} exactly to delete the space")
    remove_repo(browser.ctx, browser.session, space.repo)
    return f"{name} is deleted."


SETTINGS: dict[str, Setting] = {
    "hardware": set_hardware,
    "sleep": set_sleep,
    "visibility": set_visibility,
    "domain": set_domain,
    "secrets": environment_setter("secrets", "Secret"),
    "variables": environment_setter("variables", "Variable"),
    "secrets/delete": environment_remover("secrets"),
    "variables/delete": environment_remover("variables"),
    "restart": restart_space,
    "factory": factory_rebuild,
    "pause": pause_space,
    "delete": delete_space,
}


def apply_setting(browser: Browser, space: Space, action: str, form: dict[str, Any]) -> str:
    """Carry out one settings form; returns what to tell the user."""
    setting = SETTINGS.get(action)
    if setting is None:
        raise BadRequest(f"unknown setting {action!r}")
    return setting(browser, space, form)


@router.post("/spaces/{owner}/{name}/like")
async def like(owner: str, name: str, browser: BrowserDep) -> Response:
    """Like the space, or take the like back when the user already likes it."""
    account = browser.require_account()
    await browser.check_form()
    repo = space_context(browser, owner, name)["repo"]
    notice = "Liked." if toggle_like(browser.session, account, repo) else "Like removed."
    return browser.redirect(f"/spaces/{repo.full_name}", notice=notice)


@router.get("/spaces/{owner}/{name}/duplicate", response_class=HTMLResponse)
def duplicate_page(owner: str, name: str, browser: BrowserDep) -> Response:
    """The page to duplicate a space into one of the user's namespaces."""
    if browser.account is None:
        return browser.redirect(f"/login?next=/spaces/{owner}/{name}/duplicate")
    return browser.render(
        "duplicate.html", tab="duplicate", owners=owners_of(browser), **space_context(browser, owner, name)
    )


@router.post("/spaces/{owner}/{name}/duplicate")
async def duplicate(owner: str, name: str, browser: BrowserDep) -> Response:
    """Copy the space with its history and variables (not secrets) under a new name; the copy deploys."""
    account = browser.require_account()
    form = await browser.check_form()
    source: Space = space_context(browser, owner, name)["space"]
    to_owner, to_name = str(form.get("owner", account.name)), str(form.get("name", "")).strip()
    try:
        copy = duplicate_space(
            browser.ctx,
            browser.session,
            browser.principal,
            source,
            to_owner=to_owner,
            to_name=to_name,
            private=form.get("visibility") == "private",
            hardware=None,
            sleep_time=None,
            secrets=[],
            variables=[],
        )
    except SpacehubError as exc:
        browser.session.rollback()
        return browser.redirect(f"/spaces/{owner}/{name}/duplicate", error=exc.message)
    return browser.redirect(f"/spaces/{copy.full_name}", notice=f"Duplicated from {source.repo.full_name}.")
