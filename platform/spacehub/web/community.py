"""The Community tab of every repository: its discussions and pull requests, a thread with its
comments, and the forms to open one, comment, close or reopen, and merge (writers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from spacehub.controller import discussions
from spacehub.controller.access import can_write
from spacehub.controller.repos import get_readable_repo
from spacehub.db.models import Repo, RepoType
from spacehub.web.browse import space_context
from spacehub.web.deps import Browser, BrowserDep

router = APIRouter(include_in_schema=False)
PREFIXES = {RepoType.SPACE: "/spaces", RepoType.DATASET: "/datasets", RepoType.MODEL: ""}


def repo_context(browser: Browser, type: RepoType, owner: str, name: str) -> dict[str, Any]:
    """What the repository's header needs, as its other tabs have it."""
    if type == RepoType.SPACE:
        return {**space_context(browser, owner, name), "prefix": "/spaces", "kind": "space"}
    repo = get_readable_repo(browser.session, browser.principal, type, owner, name)
    return {
        "repo": repo,
        "prefix": PREFIXES[type],
        "kind": type.value,
        "can_write": can_write(browser.session, browser.principal, repo),
        "card": repo.card or {},
    }


def _base(prefix: str, repo: Repo) -> str:
    return f"{prefix}/{repo.full_name}/discussions"


def _routes(type: RepoType) -> None:
    prefix = PREFIXES[type]
    path = f"{prefix}/{{owner}}/{{name}}/discussions"

    @router.get(path, response_class=HTMLResponse, name=f"{type.value}_discussions")
    def listing(owner: str, name: str, browser: BrowserDep, p: int = Query(0, ge=0)) -> Response:
        context = repo_context(browser, type, owner, name)
        found = discussions.list_discussions(browser.session, context["repo"], page=p)
        return browser.render("discussions.html", tab="community", listing=found, page=p, **context)

    @router.post(path)
    async def open_one(owner: str, name: str, browser: BrowserDep) -> Response:
        browser.require_account()
        form = await browser.check_form()
        repo = repo_context(browser, type, owner, name)["repo"]
        opened = discussions.open_discussion(
            browser.ctx, browser.session, browser.principal, repo, form.get("title"), form.get("description")
        )
        return browser.redirect(
            f"{_base(prefix, repo)}/{opened.num}", notice=f"Discussion #{opened.num} opened."
        )

    @router.get(path + "/{num}", response_class=HTMLResponse, name=f"{type.value}_discussion")
    def thread(owner: str, name: str, num: int, browser: BrowserDep) -> Response:
        context = repo_context(browser, type, owner, name)
        found = discussions.find_discussion(browser.session, context["repo"], num)
        details = discussions.details_json(browser.ctx, found, with_diff=found.is_pull_request)
        moderate = discussions.may_moderate(browser.session, browser.principal, found)
        return browser.render(
            "discussion.html", tab="community", discussion=details, may_moderate=moderate, **context
        )

    @router.post(path + "/{num}/{action}")
    async def act(owner: str, name: str, num: int, action: str, browser: BrowserDep) -> Response:
        browser.require_account()
        form = await browser.check_form()
        repo = repo_context(browser, type, owner, name)["repo"]
        found = discussions.find_discussion(browser.session, repo, num)
        session, principal = browser.session, browser.principal
        if action == "comment":
            discussions.comment(session, principal, found, form.get("comment"))
            notice = "Comment added."
        elif action == "status":
            discussions.change_status(session, principal, found, form.get("status"), form.get("comment"))
            notice = f"#{num} is {found.status}."
        elif action == "merge":
            discussions.merge(browser.ctx, session, principal, found, form.get("comment"))
            notice = f"#{num} is merged."
        else:
            return browser.redirect(f"{_base(prefix, repo)}/{num}", error=f"no such action: {action}")
        return browser.redirect(f"{_base(prefix, repo)}/{num}", notice=notice)


for each in PREFIXES:
    _routes(each)
