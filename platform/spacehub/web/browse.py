"""Pages for visitors: the gallery, a space (its app, files and logs), models, datasets, profiles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from spacehub.controller.access import APP_LINK_SECONDS, app_link, can_read, can_write
from spacehub.controller.accounts import find_account, members_of, organizations_of
from spacehub.controller.files import file_view, folder_view
from spacehub.controller.inference import FORMLESS_TASKS, TASKS
from spacehub.controller.listing import (
    count_visible,
    last_active,
    listing_conditions,
    spaces_using,
    trending_page,
    visible_repos,
)
from spacehub.controller.repos import get_readable_repo, get_space_for_app, likes, open_git
from spacehub.controller.serializers import space_runtime
from spacehub.controller.spaces import SDKS
from spacehub.controller.viewer import DatasetAtHead
from spacehub.db.models import AccountKind, Repo, RepoType
from spacehub.errors import RepoNotFound, SpacehubError
from spacehub.http.urls import public_base_url, space_app_url
from spacehub.web.deps import Browser, BrowserDep

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 24
VIEWER_PAGE = 50
SORTS = {"trending": "Trending", "likes": "Most liked", "updated": "Recently updated", "created": "Newest"}


@dataclass
class Card:
    repo: Repo
    stage: str | None
    activity: float

    @property
    def card(self) -> dict[str, Any]:
        """The README front matter of the space (title, emoji, colors...), empty when it has none."""
        return self.repo.card or {}

    @property
    def title(self) -> str:
        """The title the card shows: the front matter's, else the repository's name."""
        return str(self.card.get("title") or self.repo.name)


def space_cards(browser: Browser, repos: list[Repo]) -> list[Card]:
    """A card for each space in `repos`, with its stage and last visit (else its last update)."""
    return [
        Card(repo=repo, stage=repo.space.stage if repo.space else None, activity=last)
        for repo, last in zip(repos, last_active(browser.ctx, repos), strict=True)
    ]


@router.get("/", response_class=HTMLResponse)
@router.get("/spaces", response_class=HTMLResponse)
def gallery(
    browser: BrowserDep, q: str = "", sdk: str = "", sort: str = "trending", page: int = Query(1, ge=1)
) -> Response:
    """The gallery of the spaces the visitor may see: searched, filtered by SDK, sorted and paged."""
    sort = sort if sort in SORTS else "trending"
    order = {"likes": "likes", "updated": "lastModified", "created": "createdAt"}.get(sort)
    search, tags = q.strip() or None, [sdk] if sdk in SDKS else []
    conditions = listing_conditions(
        browser.session, browser.principal, RepoType.SPACE, search=search, tags=tags
    )
    total = count_visible(browser.session, conditions)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    if sort == "trending":
        repos = trending_page(browser.ctx, browser.session, conditions, page, PAGE_SIZE)
    else:
        repos = visible_repos(
            browser.session,
            browser.principal,
            RepoType.SPACE,
            search=search,
            tags=tags,
            sort=order,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
    return browser.render(
        "gallery.html",
        cards=space_cards(browser, repos),
        total=total,
        q=q,
        sdk=sdk,
        sort=sort,
        sorts=SORTS,
        sdks=SDKS,
        page=page,
        pages=pages,
    )


def space_context(browser: Browser, owner: str, name: str, *, app_only: bool = False) -> dict[str, Any]:
    """What every tab of a space's page shows: repo, card, runtime, app URL and the visitor's
    rights; `app_only` (the app's tab) also opens a protected space to those who may not read it."""
    session, principal = browser.session, browser.principal
    if app_only:
        repo = get_space_for_app(session, principal, owner, name)
    else:
        repo = get_readable_repo(session, principal, RepoType.SPACE, owner, name)
    space = repo.space
    if space is None:
        raise RepoNotFound(f"Repository {owner}/{name} not found")
    ctx = browser.ctx
    base = public_base_url(browser.request)
    host = space_app_url(ctx.settings, space, base)
    liked = browser.account is not None and likes(browser.session, browser.account, repo)
    return {
        "repo": repo,
        "space": space,
        "card": repo.card or {},
        "runtime": space_runtime(ctx, space, host),
        "app_host": host,
        "can_write": can_write(browser.session, browser.principal, repo),
        "can_read": can_read(browser.session, browser.principal, repo),
        "liked": liked,
    }


def signed_app_src(browser: Browser, context: dict[str, Any]) -> str:
    """The iframe's address: private apps open with a short-lived signed credential (the user's
    token never reaches the app)."""
    host = context["app_host"]
    repo = context["repo"]
    src = host if host.endswith("/") else host + "/"
    if repo.private and not context["space"].protected:
        token, _exp = app_link(browser.ctx.settings, browser.principal, repo, APP_LINK_SECONDS)
        src += f"?__sign={token}"
    return src


@router.get("/spaces/{owner}/{name}", response_class=HTMLResponse)
def space_page(owner: str, name: str, browser: BrowserDep) -> Response:
    """A space's page, with its app in a frame (signed, so that private apps open)."""
    context = space_context(browser, owner, name, app_only=True)
    return browser.render("space.html", tab="app", app_src=signed_app_src(browser, context), **context)


@router.get("/spaces/{owner}/{name}/logs", response_class=HTMLResponse)
def space_logs(owner: str, name: str, browser: BrowserDep) -> Response:
    """A space's Logs tab, which follows its build and run logs."""
    return browser.render("space_logs.html", tab="logs", **space_context(browser, owner, name))


def files_context(browser: Browser, repo: Repo, tail: str) -> dict[str, Any]:
    """What the Files tab shows of a folder (`tail`: revision and path) of the repository."""
    return folder_view(open_git(browser.ctx.settings, repo), tail)


def blob_context(browser: Browser, repo: Repo, tail: str) -> dict[str, Any]:
    """What the Files tab shows of one file (`tail`: revision and path) of the repository."""
    return file_view(open_git(browser.ctx.settings, repo), tail)


@router.get("/spaces/{owner}/{name}/tree/{tail:path}", response_class=HTMLResponse)
def space_files(owner: str, name: str, tail: str, browser: BrowserDep) -> Response:
    """A folder of a space's files at a revision."""
    context = space_context(browser, owner, name)
    return browser.render(
        "files.html",
        tab="files",
        prefix="/spaces",
        **context,
        **files_context(browser, context["repo"], tail),
    )


@router.get("/spaces/{owner}/{name}/blob/{tail:path}", response_class=HTMLResponse)
def space_file(owner: str, name: str, tail: str, browser: BrowserDep) -> Response:
    """One of a space's files at a revision."""
    context = space_context(browser, owner, name)
    return browser.render(
        "file.html", tab="files", prefix="/spaces", **context, **blob_context(browser, context["repo"], tail)
    )


def viewer_context(browser: Browser, repo: Repo, config: str, split: str, offset: int) -> dict[str, Any]:
    """A page of a dataset's rows: the chosen split (else the first), from `offset`."""
    dataset = DatasetAtHead.of(open_git(browser.ctx.settings, repo), repo)
    splits = [{"config": c, "split": s} for c, by_split in dataset.layout.items() for s in by_split]
    if not splits:
        return {"splits": []}
    if {"config": config, "split": split} not in splits:
        config, split = splits[0]["config"], splits[0]["split"]
    context: dict[str, Any] = {"splits": splits, "config": config, "split": split, "offset": offset}
    context["page_size"] = VIEWER_PAGE
    try:
        context["page"] = dataset.split(config, split).rows(offset, VIEWER_PAGE)
    except SpacehubError as exc:
        context["error"] = str(exc)
    return context


TRY_EXAMPLES = {"fill-mask": "Paris is the [MASK] of France.", "question-answering": "Who lives here?"}


def try_task(model: Repo) -> str | None:
    """The task of a model page's try-it form: its card's, if the inference provider serves it
    and a form can ask it (not zero-shot labels, embeddings or sentence pairs)."""
    task = str((model.card or {}).get("pipeline_tag") or "")
    return task if task in TASKS and task not in FORMLESS_TASKS else None


def _repo_routes(prefix: str, type: RepoType) -> None:
    def base(browser: Browser, owner: str, name: str) -> dict[str, Any]:
        repo = get_readable_repo(browser.session, browser.principal, type, owner, name)
        return {
            "repo": repo,
            "prefix": prefix,
            "kind": type.value,
            "can_write": can_write(browser.session, browser.principal, repo),
            "card": repo.card or {},
        }

    @router.get(f"{prefix}/{{owner}}/{{name}}", response_class=HTMLResponse, name=f"{type.value}_page")
    def repo_page(owner: str, name: str, browser: BrowserDep) -> Response:
        context = base(browser, owner, name)
        used_by = spaces_using(browser.session, browser.principal, context["repo"])
        task = try_task(context["repo"]) if type == RepoType.MODEL else None
        return browser.render(
            "repo.html",
            tab="card",
            used_by=used_by,
            try_task=task,
            try_example=TRY_EXAMPLES.get(task or "", ""),
            **context,
            **files_context(browser, context["repo"], ""),
        )

    if type == RepoType.DATASET:

        @router.get(f"{prefix}/{{owner}}/{{name}}/viewer", response_class=HTMLResponse, name="dataset_viewer")
        def dataset_viewer(
            owner: str,
            name: str,
            browser: BrowserDep,
            config: str = "",
            split: str = "",
            offset: int = Query(0, ge=0),
        ) -> Response:
            context = base(browser, owner, name)
            return browser.render(
                "viewer.html",
                tab="viewer",
                **context,
                **viewer_context(browser, context["repo"], config, split, offset),
            )

    @router.get(
        f"{prefix}/{{owner}}/{{name}}/tree/{{tail:path}}",
        response_class=HTMLResponse,
        name=f"{type.value}_files",
    )
    def repo_files(owner: str, name: str, tail: str, browser: BrowserDep) -> Response:
        context = base(browser, owner, name)
        return browser.render(
            "files.html", tab="files", **context, **files_context(browser, context["repo"], tail)
        )

    @router.get(
        f"{prefix}/{{owner}}/{{name}}/blob/{{tail:path}}",
        response_class=HTMLResponse,
        name=f"{type.value}_file",
    )
    def repo_file(owner: str, name: str, tail: str, browser: BrowserDep) -> Response:
        context = base(browser, owner, name)
        return browser.render(
            "file.html", tab="files", **context, **blob_context(browser, context["repo"], tail)
        )


@router.get("/users/{name}", response_class=HTMLResponse)
@router.get("/{name}", response_class=HTMLResponse)
def profile(name: str, browser: BrowserDep, request: Request) -> Response:
    """A user's or organization's page: their visible repositories, and members or organizations."""
    account = find_account(browser.session, name)
    if account is None:
        raise RepoNotFound(f"no user or organization named {name}")
    repos = {
        kind: [r for r in visible_repos(browser.session, browser.principal, kind, author=account.name)]
        for kind in (RepoType.SPACE, RepoType.MODEL, RepoType.DATASET)
    }
    members = members_of(browser.session, account) if account.kind == AccountKind.ORG else []
    orgs = organizations_of(browser.session, account) if account.kind != AccountKind.ORG else []
    return browser.render(
        "profile.html",
        profile=account,
        spaces=space_cards(browser, repos[RepoType.SPACE]),
        models=repos[RepoType.MODEL],
        datasets=repos[RepoType.DATASET],
        members=members,
        orgs=orgs,
    )


_repo_routes("/datasets", RepoType.DATASET)
# Models live at /{owner}/{name}, as on the Hub: these routes come last, after every fixed path.
_repo_routes("", RepoType.MODEL)
