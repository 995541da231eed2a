"""Repository content as the Hub serves it: revisions and paths, trees, files, history, refs, and
commits. One code path for models, datasets and spaces; the API's routers only speak HTTP."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy.orm import Session

from spacehub.controller.access import can_write
from spacehub.controller.accounts import Principal
from spacehub.controller.context import ControllerContext
from spacehub.controller.discussions import open_discussion, pr_ref, record_commit
from spacehub.controller.parquet import PARQUET_REF
from spacehub.controller.repos import get_readable_repo, git_path, open_git
from spacehub.controller.serializers import iso
from spacehub.controller.spaces import handle_push
from spacehub.db.models import Discussion, Repo, RepoType, Space
from spacehub.errors import BadRequest, EntryNotFound, Forbidden, RevisionNotFound, SpacehubError
from spacehub.repos.commits import (
    CommitError,
    CommitPlan,
    add_operation,
    apply_plan,
    is_git_path,
    plan_from_json,
)
from spacehub.repos.git import DEFAULT_BRANCH, GitRepo, TreeEntry
from spacehub.repos.ndjson import NdjsonError, NdjsonReader
from spacehub.spec.config import ConfigError, load_space_config
from spacehub.spec.frontmatter import FrontMatterError, parse_front_matter, split_readme

MAX_SHOWN_FILE = 512 * 1024
MAX_SHOWN_IMAGE = 20 * 1024 * 1024
MAX_RENDERED_README = 512 * 1024


@dataclass(frozen=True)
class FileAt:
    """One file of a repository at a commit, ready to stream."""

    commit: str
    path: str
    oid: str
    size: int
    git: GitRepo

    def chunks(self, start: int = 0) -> Iterator[bytes]:
        """The file's bytes from offset `start`."""
        return self.git.stream_blob(self.oid, start)


@dataclass(frozen=True)
class Page:
    """One page of a listing, and whether more follows."""

    commit: str
    items: list[dict[str, Any]]
    more: bool


def split_revision(git: GitRepo, raw_tail: str) -> tuple[str, str, str]:
    """(revision, commit id, path) from `{revision}/{path}` as it came in the URL.

    Clients quote slashes in revisions (`refs%2Fpr%2F1`); others do not, so when the first segment
    names no revision, longer prefixes are tried."""
    segments = raw_tail.split("/")
    for count in range(1, len(segments) + 1):
        revision = unquote("/".join(segments[:count]))
        sha = git.resolve(revision) if revision else None
        if sha is not None:
            return revision, sha, unquote("/".join(segments[count:]))
    raise RevisionNotFound(f"Invalid rev id: {unquote(segments[0])}")


def entry_json(entry: TreeEntry, last_commit: dict[str, Any] | None = None) -> dict[str, Any]:
    """A tree entry in the Hub's shape (`expand` adds its last commit)."""
    item: dict[str, Any] = {
        "type": "file" if entry.type == "blob" else "directory",
        "oid": entry.oid,
        "size": entry.size,
        "path": entry.path,
    }
    if last_commit is not None:
        item["lastCommit"] = last_commit
    return item


def last_commit_of(git: GitRepo, sha: str, path: str) -> dict[str, Any] | None:
    """The last commit up to `sha` that touched `path`."""
    out = git.run("log", "-1", "--format=%H", sha, "--", path).decode().strip()
    if not out:
        return None
    info = git.commit_info(out)
    return {"id": info.sha, "title": info.title, "date": iso(info.date)}


def readable_git(
    ctx: ControllerContext, session: Session, principal: Principal, type: RepoType, owner: str, name: str
) -> GitRepo:
    """The git repository of a repo `principal` may read (RepoNotFound otherwise)."""
    return open_git(ctx.settings, get_readable_repo(session, principal, type, owner, name))


def writable_repo(
    session: Session, principal: Principal, type: RepoType, owner: str, name: str, *, proposal: bool = False
) -> Repo:
    """A repo `principal` may commit to (404 if they may not see it, 403 if they may not write);
    a `proposal` (a pull request) needs only a reader with a write token."""
    repo = get_readable_repo(session, principal, type, owner, name)
    if proposal and principal.account is not None and principal.can_write:
        return repo
    if not can_write(session, principal, repo):
        raise Forbidden(f"you need a write token with access to {repo.full_name}")
    return repo


# Reading -----------------------------------------------------------------------------------------


def find_file(git: GitRepo, raw_tail: str) -> tuple[str, str, FileAt | None]:
    """The commit and path a `{revision}/{path}` names, and the file there (None where there is none)."""
    _revision, sha, path = split_revision(git, raw_tail)
    entry = git.entry(sha, path.strip("/")) if path.strip("/") else None
    if entry is None or entry.type != "blob":
        return sha, path, None
    return sha, path, FileAt(sha, entry.path, entry.oid, entry.size, git)


def tree_page(
    git: GitRepo, raw_tail: str, *, recursive: bool, expand: bool, start: int, size: int
) -> Page | None:
    """Entries under `{revision}/{path}`, one page; None for a new repository without a commit."""
    if unquote(raw_tail.split("/")[0]) == DEFAULT_BRANCH and not git.branches():
        return None
    _revision, sha, path = split_revision(git, raw_tail)
    path = path.strip("/")
    if path:
        entry = git.entry(sha, path)
        if entry is None or entry.type != "tree":
            raise EntryNotFound(f"{path} does not exist at {sha[:12]}")
    entries = git.tree(sha, path, recursive=recursive)
    page = entries[start : start + size]
    items = [entry_json(e, last_commit_of(git, sha, e.path) if expand else None) for e in page]
    return Page(sha, items, start + size < len(entries))


def paths_info(git: GitRepo, revision: str, paths: list[str], expand: bool) -> list[dict[str, Any]]:
    """The entries of the given paths at a revision; paths that do not exist are left out."""
    sha = git.resolve(revision)
    if sha is None:
        raise RevisionNotFound(f"Invalid rev id: {revision}")
    found = []
    for path in paths:
        entry = git.entry(sha, path.strip("/")) if path.strip("/") else None
        if entry is not None:
            found.append(entry_json(entry, last_commit_of(git, sha, entry.path) if expand else None))
    return found


def refs(git: GitRepo) -> dict[str, Any]:
    """Branches and tags, in the Hub's shape."""

    def listing(names: dict[str, str], kind: str) -> list[dict[str, str]]:
        return [
            {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": sha} for n, sha in sorted(names.items())
        ]

    return {
        "branches": listing(git.branches(), "heads"),
        "tags": listing(git.tags(), "tags"),
        "converts": [
            {"name": "parquet", "ref": PARQUET_REF, "targetCommit": sha}
            for sha in filter(None, [git.resolve(PARQUET_REF)])
        ],
        "pullRequests": [],
    }


def history(git: GitRepo, revision: str, *, start: int, size: int) -> Page:
    """Commits reachable from a revision, newest first, one page."""
    sha = git.resolve(revision)
    if sha is None:
        raise RevisionNotFound(f"Invalid rev id: {revision}")
    commits = git.log(sha, limit=size + 1, skip=start)
    items = [
        {
            "id": c.sha,
            "title": c.title,
            "message": c.message,
            "date": iso(c.date),
            "authors": [{"user": c.author}],
        }
        for c in commits[:size]
    ]
    return Page(sha, items, len(commits) > size)


def static_file(
    ctx: ControllerContext, session: Session, space_id: int, sha: str, path: str
) -> FileAt | None:
    """A file of a static space at a commit; a directory stands for its index.html."""
    space = session.get(Space, space_id)
    if space is None:
        return None
    git = open_git(ctx.settings, space.repo)
    entry = git.entry(sha, path)
    if entry is not None and entry.type == "tree":
        entry = git.entry(sha, f"{path.rstrip('/')}/index.html".lstrip("/"))
    if entry is None or entry.type != "blob" or entry.is_symlink:
        return None
    return FileAt(sha, entry.path, entry.oid, entry.size, git)


def folder_view(git: GitRepo, raw_tail: str) -> dict[str, Any]:
    """What the Files tab shows of a folder at a revision: its entries, and the README at the top
    (rendered only up to MAX_RENDERED_README bytes)."""
    if not git.branches():
        return {
            "revision": DEFAULT_BRANCH,
            "sha": None,
            "path": "",
            "entries": [],
            "readme": None,
            "crumbs": [],
        }
    revision, sha, path = split_revision(git, raw_tail or DEFAULT_BRANCH)
    path = path.strip("/")
    if path:
        entry = git.entry(sha, path)
        if entry is None or entry.type != "tree":
            raise EntryNotFound(f"{path} does not exist at {revision}")
    entries = sorted(git.tree(sha, path), key=lambda e: (e.type != "tree", e.path.lower()))
    readme, readme_too_large = None, False
    if not path and (found := git.entry(sha, "README.md")) is not None and found.type == "blob":
        readme_too_large = found.size > MAX_RENDERED_README
        if not readme_too_large:
            readme = split_readme(git.read_blob(found.oid).decode("utf-8", "replace"))[2]
    return {
        "revision": revision,
        "sha": sha,
        "path": path,
        "entries": entries,
        "readme": readme,
        "readme_too_large": readme_too_large,
        "crumbs": crumbs(path),
        "commit": git.commit_info(sha),
    }


def file_view(git: GitRepo, raw_tail: str) -> dict[str, Any]:
    """What the Files tab shows of one file: its text (when it is text and small enough)."""
    if not git.branches():
        raise RevisionNotFound("the repository is empty")
    revision, sha, path = split_revision(git, raw_tail)
    entry = git.entry(sha, path.strip("/"))
    if entry is None or entry.type != "blob":
        raise EntryNotFound(f"{path} does not exist at {revision}")
    media = mimetypes.guess_type(entry.path)[0] or ""
    text = None
    if entry.size <= MAX_SHOWN_FILE and not media.startswith(("image/", "audio/", "video/")):
        data = git.read_blob(entry.oid)
        if b"\0" not in data[:8000]:
            text = data.decode("utf-8", "replace")
    return {
        "revision": revision,
        "sha": sha,
        "path": entry.path,
        "entry": entry,
        "text": text,
        "is_image": media.startswith("image/") and entry.size <= MAX_SHOWN_IMAGE,
        "markdown": entry.path.lower().endswith(".md"),
        "crumbs": crumbs(entry.path),
    }


def crumbs(path: str) -> list[tuple[str, str]]:
    """(name, path) of each folder down to `path`, for the page's breadcrumbs."""
    parts = [p for p in path.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


# Writing -----------------------------------------------------------------------------------------


def preupload(git: GitRepo, revision: str, paths: list[str]) -> dict[str, Any]:
    """How to upload each file: every one `regular` (inline in the commit, stored in git), with the
    blob id of the file already at that path so that clients skip unchanged files."""
    sha = git.resolve(revision)
    existing = {e.path: e.oid for e in git.files(sha)} if sha else {}
    files = []
    for raw in paths:
        path = raw.strip("/")
        ignored = is_git_path(path)
        files.append(
            {"path": raw, "uploadMode": "regular", "shouldIgnore": ignored, "oid": existing.get(path)}
        )
    return {"files": files, "commitOid": sha}


def staging_dir(ctx: ControllerContext, repo: Repo) -> Path:
    """Where a commit's payload is spooled: beside the repository, on the same disk."""
    return git_path(ctx.settings, repo)


def apply_commit(
    ctx: ControllerContext,
    session: Session,
    principal: Principal,
    repo: Repo,
    payload: Path,
    branch: str,
    *,
    is_json: bool,
    create_pr: bool = False,
) -> tuple[str, Discussion | None]:
    """Commit the operations in `payload` (NDJSON, or the older JSON object) to `branch`, or with
    `create_pr` to a new pull request against it; a push to the default branch deploys a space."""
    git = open_git(ctx.settings, repo)
    if git.resolve(f"refs/tags/{branch}") or (len(branch) == 40 and git.resolve(branch) == branch):
        raise BadRequest(f"{branch!r} is not a branch: commits go to branches")
    max_file = ctx.settings.max_repo_file_size
    try:
        plan = read_plan(git, payload, is_json, max_file)
        if branch != DEFAULT_BRANCH and git.head(branch) is None:
            raise CommitError(f"branch {branch!r} does not exist", 404, "RevisionNotFound")
        if create_pr:
            return _commit_to_new_pull_request(ctx, session, principal, repo, plan, branch)
        sha = apply_plan(git, plan, branch, principal.author)
    except CommitError as exc:
        raise SpacehubError(exc.message, error_code=exc.code, status_code=exc.status) from None
    except NdjsonError as exc:
        raise BadRequest(str(exc)) from None
    if branch == DEFAULT_BRANCH:
        handle_push(ctx, session, repo)
    return sha, None


def _commit_to_new_pull_request(
    ctx: ControllerContext, session: Session, principal: Principal, repo: Repo, plan: CommitPlan, branch: str
) -> tuple[str, Discussion]:
    if branch != DEFAULT_BRANCH:
        raise BadRequest(f"pull requests target {DEFAULT_BRANCH}, not {branch!r}")
    summary = plan.summary.strip() or "Update files"
    pull = open_discussion(ctx, session, principal, repo, summary, plan.description, pull_request=True)
    sha = apply_plan(open_git(ctx.settings, repo), plan, branch, principal.author, ref=pr_ref(pull.num))
    record_commit(session, principal, pull, sha, summary)
    return sha, pull


def read_plan(git: GitRepo, payload: Path, is_json: bool, max_file: int) -> CommitPlan:
    """The operations of a commit payload, with every file already written to git's object store."""
    if is_json:
        try:
            body = json.loads(payload.read_bytes())
        except json.JSONDecodeError as exc:
            raise BadRequest(f"the commit payload is not JSON: {exc.msg}") from None
        if not isinstance(body, dict):
            raise BadRequest("the commit payload must be a JSON object")
        return plan_from_json(body, git, max_file)
    plan = CommitPlan()
    reader = NdjsonReader(payload.parent)
    seen_header = False
    with payload.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            for entry in reader.feed(chunk):
                seen_header = seen_header or (isinstance(entry, dict) and entry.get("key") == "header")
                add_operation(plan, git, entry, max_file)
    for entry in reader.close():
        seen_header = seen_header or (isinstance(entry, dict) and entry.get("key") == "header")
        add_operation(plan, git, entry, max_file)
    if not seen_header:
        raise BadRequest('the commit payload must start with a {"key": "header"} line')
    return plan


def front_matter_problem(content: str, repo_type: str) -> str | None:
    """What is wrong with a README's front matter for a repo of `repo_type`; None when usable."""
    try:
        if repo_type.removesuffix("s") == "space":
            load_space_config(content)
        else:
            parse_front_matter(content)
    except ConfigError as exc:
        return exc.message
    except FrontMatterError as exc:
        return str(exc)
    return None
