"""Discussions and pull requests, as huggingface_hub calls them: list, open, read (with the diff),
comment, edit a comment, close or reopen, rename, merge."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from spacehub.api.routers.repos import RepoTypePlural
from spacehub.controller import discussions
from spacehub.controller.accounts import Principal
from spacehub.controller.repos import get_readable_repo
from spacehub.db.models import Discussion
from spacehub.http.deps import CtxDep, PrincipalDep, SessionDep

router = APIRouter(tags=["discussions"])
BASE = "/api/{type_plural}/{owner}/{name}/discussions"


class NewDiscussion(BaseModel):
    title: str
    description: str | None = None
    pullRequest: bool = False


class NewComment(BaseModel):
    comment: str


class EditedComment(BaseModel):
    content: str


class NewStatus(BaseModel):
    status: str
    comment: str | None = None


class NewTitle(BaseModel):
    title: str


class Merge(BaseModel):
    comment: str | None = None


def _discussion(
    session: Session, principal: Principal, type_plural: RepoTypePlural, owner: str, name: str, num: int
) -> Discussion:
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    return discussions.find_discussion(session, repo, num)


@router.get(BASE, summary="List discussions and pull requests")
def list_discussions(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    p: int = Query(0, ge=0),
    type: str | None = None,
    status: str | None = None,
    author: str | None = None,
) -> dict[str, Any]:
    """A page (`p`) of the repository's discussions, newest first; `type` is discussion or
    pull_request, `status` open, closed, merged or draft."""
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    return discussions.list_discussions(session, repo, kind=type, status=status, author=author, page=p)


@router.post(BASE, summary="Open a discussion or a pull request")
def open_discussion(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    body: NewDiscussion,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Open discussion number N+1 (a pull request starts as a draft at the default branch's head,
    at `refs/pr/N`)."""
    repo = get_readable_repo(session, principal, type_plural.repo_type, owner, name)
    opened = discussions.open_discussion(
        ctx, session, principal, repo, body.title, body.description, pull_request=body.pullRequest
    )
    return discussions.discussion_json(opened)


@router.get(BASE + "/{num}", summary="A discussion with its events")
def discussion_details(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    num: int,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    diff: bool = False,
) -> dict[str, Any]:
    """The discussion's thread; for a pull request its target and merge commit, and with `diff`
    what it changes."""
    found = _discussion(session, principal, type_plural, owner, name, num)
    return discussions.details_json(ctx, found, with_diff=diff)


@router.post(BASE + "/{num}/comment", summary="Comment")
def comment(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    num: int,
    body: NewComment,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Add a comment; the new event."""
    found = _discussion(session, principal, type_plural, owner, name, num)
    return {
        "newMessage": discussions.event_json(discussions.comment(session, principal, found, body.comment))
    }


@router.post(BASE + "/{num}/comment/{comment_id}/edit", summary="Edit a comment")
def edit_comment(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    num: int,
    comment_id: str,
    body: EditedComment,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Replace the text of one's own comment; the edited event."""
    found = _discussion(session, principal, type_plural, owner, name, num)
    edited = discussions.edit_comment(session, principal, found, comment_id, body.content)
    return {"updatedComment": discussions.event_json(edited)}


@router.post(BASE + "/{num}/status", summary="Close or reopen")
def change_status(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    num: int,
    body: NewStatus,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Set the status to open or closed (its author or the repository's writers); the new event."""
    found = _discussion(session, principal, type_plural, owner, name, num)
    event = discussions.change_status(session, principal, found, body.status, body.comment)
    return {"newStatus": discussions.event_json(event)}


@router.post(BASE + "/{num}/title", summary="Rename")
def rename(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    num: int,
    body: NewTitle,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Give the discussion a new title; the new event."""
    found = _discussion(session, principal, type_plural, owner, name, num)
    return {"newTitle": discussions.event_json(discussions.rename(session, principal, found, body.title))}


@router.post(BASE + "/{num}/merge", summary="Merge a pull request")
def merge(
    type_plural: RepoTypePlural,
    owner: str,
    name: str,
    num: int,
    ctx: CtxDep,
    session: SessionDep,
    principal: PrincipalDep,
    body: Merge | None = None,
) -> dict[str, Any]:
    """Merge the pull request into its target branch (the repository's writers), which then runs
    what a push there runs; 409 with the conflicting files when it cannot."""
    found = _discussion(session, principal, type_plural, owner, name, num)
    merged = discussions.merge(ctx, session, principal, found, body.comment if body else None)
    return {"mergeCommitId": merged}
