"""Discussions and pull requests on any repository, as the Hub has them: numbered per repository,
a thread of events (comments, status and title changes, commits). A pull request's commits live at
`refs/pr/{num}`, pushed with the commit API (`create_pr`) or plain git; merging it into its target
branch runs what a push there runs (a space deploys the new head)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from spacehub.controller.access import can_read, can_write
from spacehub.controller.accounts import Principal
from spacehub.controller.context import ControllerContext
from spacehub.controller.repos import open_git
from spacehub.controller.serializers import iso
from spacehub.controller.spaces import handle_push
from spacehub.db.models import Account, Discussion, DiscussionEvent, Repo
from spacehub.errors import BadRequest, Conflict, Forbidden, NotFound, SpacehubError, Unauthorized
from spacehub.repos.commits import CommitError, merge_refs
from spacehub.repos.git import DEFAULT_BRANCH

PAGE_SIZE = 50
MAX_TITLE = 200
MAX_COMMENT = 65_536
STATUSES = ("open", "closed")


def pr_ref(num: int) -> str:
    """Where a pull request's commits live."""
    return f"refs/pr/{num}"


def _who(account: Any) -> dict[str, Any]:
    return {"author": {"name": account.name, "type": "user"}} if account is not None else {}


def event_json(event: DiscussionEvent) -> dict[str, Any]:
    """An event as the Hub's API gives it (huggingface_hub's deserialize_event reads it)."""
    return {
        "id": event_id(event),
        "type": event.type,
        "createdAt": iso(event.created_at),
        "data": event.data,
        **_who(event.author),
    }


def event_id(event: DiscussionEvent) -> str:
    """An event's id as the Hub writes them (24 hexadecimal digits)."""
    return f"{event.id:024x}"


def discussion_json(discussion: Discussion) -> dict[str, Any]:
    """A discussion as listings give it."""
    repo = discussion.repo
    comments = sum(1 for e in discussion.events if e.type == "comment")
    return {
        "num": discussion.num,
        "title": discussion.title,
        "status": discussion.status,
        "isPullRequest": discussion.is_pull_request,
        "createdAt": iso(discussion.created_at),
        "repo": {"name": repo.full_name, "type": repo.type.value},
        "numComments": comments,
        "pinned": False,
        "topReactions": [],
        **_who(discussion.author),
    }


def details_json(ctx: ControllerContext, discussion: Discussion, with_diff: bool) -> dict[str, Any]:
    """A discussion with its events; a pull request with its target, merge commit and diff."""
    details = {**discussion_json(discussion), "events": [event_json(e) for e in discussion.events]}
    if discussion.is_pull_request:
        base = f"refs/heads/{discussion.target_branch or DEFAULT_BRANCH}"
        changes: dict[str, Any] = {"base": base}
        if discussion.merge_commit:
            changes["mergeCommitId"] = discussion.merge_commit
        details.update(changes=changes, filesWithConflicts=[])
        if with_diff:
            git = open_git(ctx.settings, discussion.repo)
            head = git.resolve(pr_ref(discussion.num))
            if head is not None and git.resolve(base) is not None:
                details["diff"] = git.run("diff", f"{base}...{head}").decode(errors="replace")
    return details


def list_discussions(
    session: Session,
    repo: Repo,
    *,
    kind: str | None = None,
    status: str | None = None,
    author: str | None = None,
    page: int = 0,
) -> dict[str, Any]:
    """A page of the repository's discussions, newest first, filtered as the Hub's listing is."""
    query = select(Discussion).where(Discussion.repo_id == repo.id)
    if kind in ("discussion", "pull_request"):
        query = query.where(Discussion.is_pull_request.is_(kind == "pull_request"))
    if status in ("open", "closed", "merged", "draft"):
        query = query.where(Discussion.status == status)
    if author:
        query = query.where(Discussion.author.has(name=author))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page_query = query.order_by(Discussion.num.desc()).offset(page * PAGE_SIZE).limit(PAGE_SIZE)
    found = session.scalars(
        page_query.options(selectinload(Discussion.events), joinedload(Discussion.author))
    )
    closed = session.scalar(
        select(func.count()).where(Discussion.repo_id == repo.id, Discussion.status != "open")
    )
    return {
        "discussions": [discussion_json(d) for d in found],
        "count": total,
        "start": page * PAGE_SIZE,
        "numClosedDiscussions": closed or 0,
    }


def find_discussion(session: Session, repo: Repo, num: int) -> Discussion:
    """Discussion `num` of the repository; NotFound when it has none."""
    found = session.scalar(select(Discussion).where(Discussion.repo_id == repo.id, Discussion.num == num))
    if found is None:
        raise NotFound(f"{repo.full_name} has no discussion #{num}")
    return found


def _participant(session: Session, principal: Principal, repo: Repo) -> None:
    if principal.account is None:
        raise Unauthorized("sign in (a user's token) to take part in discussions")
    if not can_read(session, principal, repo):
        raise NotFound(f"Repository {repo.full_name} not found")
    if not principal.can_write:
        raise Forbidden("taking part in discussions needs a write token")


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{what} must be non-empty text")
    if len(value) > limit:
        raise BadRequest(f"{what} is longer than {limit} characters")
    return value.strip()


def _add(
    session: Session, discussion: Discussion, principal: Principal, type: str, data: dict[str, Any]
) -> DiscussionEvent:
    event = DiscussionEvent(type=type, author=principal.account, data=data)
    discussion.events.append(event)
    session.flush()
    return event


def _comment_data(text: str) -> dict[str, Any]:
    return {"edited": False, "hidden": False, "latest": {"raw": text, "html": ""}, "numEdits": 0}


def open_discussion(
    ctx: ControllerContext,
    session: Session,
    principal: Principal,
    repo: Repo,
    title: Any,
    description: Any,
    *,
    pull_request: bool = False,
) -> Discussion:
    """Open discussion (or pull request, its ref starting at the target branch's head) number N+1."""
    _participant(session, principal, repo)
    title = _text(title, "the title", MAX_TITLE)
    last = session.scalar(select(func.max(Discussion.num)).where(Discussion.repo_id == repo.id)) or 0
    discussion = Discussion(
        repo=repo,
        num=last + 1,
        title=title,
        author=principal.account,
        is_pull_request=pull_request,
        status="draft" if pull_request else "open",  # a pull request opens with its first commit
        target_branch=DEFAULT_BRANCH if pull_request else None,
    )
    session.add(discussion)
    if isinstance(description, str) and description.strip():
        _add(
            session,
            discussion,
            principal,
            "comment",
            _comment_data(_text(description, "the description", MAX_COMMENT)),
        )
    session.flush()
    if pull_request:
        git = open_git(ctx.settings, repo)
        base = git.head()
        if base is not None:
            git.run("update-ref", pr_ref(discussion.num), base)
    return discussion


def comment(session: Session, principal: Principal, discussion: Discussion, text: Any) -> DiscussionEvent:
    """Add a comment to the thread."""
    _participant(session, principal, discussion.repo)
    return _add(
        session, discussion, principal, "comment", _comment_data(_text(text, "the comment", MAX_COMMENT))
    )


def edit_comment(
    session: Session, principal: Principal, discussion: Discussion, comment_id: str, text: Any
) -> DiscussionEvent:
    """Replace a comment's text: its author's right (and administrators')."""
    _participant(session, principal, discussion.repo)
    event = next((e for e in discussion.events if event_id(e) == comment_id.lower()), None)
    if event is None or event.type != "comment":
        raise NotFound(f"discussion #{discussion.num} has no comment {comment_id}")
    if not principal.is_admin and (principal.account is None or event.author_id != principal.account.id):
        raise Forbidden("only its author edits a comment")
    data = dict(event.data)
    data.update(latest={"raw": _text(text, "the comment", MAX_COMMENT), "html": ""}, edited=True)
    data["numEdits"] = int(data.get("numEdits", 0)) + 1
    event.data = data
    return event


def may_moderate(session: Session, principal: Principal, discussion: Discussion) -> bool:
    """Whether `principal` may close, reopen or rename the discussion: its author, or a writer."""
    own = principal.account is not None and discussion.author_id == principal.account.id
    return own or can_write(session, principal, discussion.repo)


def _moderating(session: Session, principal: Principal, discussion: Discussion) -> None:
    _participant(session, principal, discussion.repo)
    if not may_moderate(session, principal, discussion):
        raise Forbidden("only the discussion's author or the repository's writers may change it")


def change_status(
    session: Session, principal: Principal, discussion: Discussion, status: Any, note: Any = None
) -> DiscussionEvent:
    """Close or reopen, with an optional comment first."""
    _moderating(session, principal, discussion)
    if status not in STATUSES:
        raise BadRequest("status must be open or closed")
    if discussion.status == "merged":
        raise Conflict("a merged pull request stays merged")
    if isinstance(note, str) and note.strip():
        comment(session, principal, discussion, note)
    discussion.status = str(status)
    return _add(session, discussion, principal, "status-change", {"status": status})


def rename(session: Session, principal: Principal, discussion: Discussion, title: Any) -> DiscussionEvent:
    """Give the discussion a new title."""
    _moderating(session, principal, discussion)
    new = _text(title, "the title", MAX_TITLE)
    old, discussion.title = discussion.title, new
    return _add(session, discussion, principal, "title-change", {"from": old, "to": new})


def record_commit(
    session: Session, principal: Principal, discussion: Discussion, sha: str, subject: str
) -> None:
    """A commit landed on the pull request's ref: a draft becomes open, the thread says so."""
    if discussion.status == "draft":
        discussion.status = "open"
    _add(session, discussion, principal, "commit", {"subject": subject, "oid": sha})


def own_pull_request_refs(session: Session, repo: Repo, account: Account) -> list[str]:
    """The refs of the open (or draft) pull requests `account` opened on `repo`: where they may push
    without write access to the repository."""
    pulls = session.scalars(
        select(Discussion.num).where(
            Discussion.repo_id == repo.id,
            Discussion.author_id == account.id,
            Discussion.is_pull_request.is_(True),
            Discussion.status.in_(("open", "draft")),
        )
    )
    return [pr_ref(num) for num in pulls]


def note_pushed_commits(ctx: ControllerContext, session: Session, repo: Repo) -> None:
    """After a git push: each open pull request whose ref moved gets a commit event for its head."""
    git = open_git(ctx.settings, repo)
    pulls = session.scalars(
        select(Discussion).where(
            Discussion.repo_id == repo.id,
            Discussion.is_pull_request.is_(True),
            Discussion.status.in_(("open", "draft")),
        )
    )
    for pull in pulls:
        head = git.resolve(pr_ref(pull.num))
        noted = [e.data.get("oid") for e in pull.events if e.type == "commit"]
        base = git.resolve(f"refs/heads/{pull.target_branch or DEFAULT_BRANCH}")
        if head is not None and head != base and (not noted or noted[-1] != head):
            record_commit(session, Principal(account=None), pull, head, git.commit_info(head).title)


def merge(
    ctx: ControllerContext, session: Session, principal: Principal, discussion: Discussion, note: Any = None
) -> str:
    """Merge an open pull request into its target branch (a writer's right), as a push there."""
    repo = discussion.repo
    _participant(session, principal, repo)
    if not can_write(session, principal, repo):
        raise Forbidden("only the repository's writers merge pull requests")
    if not discussion.is_pull_request or discussion.status not in ("open", "draft"):
        raise BadRequest(f"#{discussion.num} is not an open pull request")
    target = discussion.target_branch or DEFAULT_BRANCH
    git = open_git(ctx.settings, repo)
    message = f"Merge pull request #{discussion.num}: {discussion.title}"
    try:
        merged = merge_refs(git, pr_ref(discussion.num), f"refs/heads/{target}", message, principal.author)
    except CommitError as exc:
        raise SpacehubError(exc.message, error_code=exc.code, status_code=exc.status) from None
    if isinstance(note, str) and note.strip():
        comment(session, principal, discussion, note)
    discussion.status, discussion.merge_commit = "merged", merged
    _add(session, discussion, principal, "status-change", {"status": "merged"})
    if target == DEFAULT_BRANCH:
        handle_push(ctx, session, repo)
    return merged
