"""`git clone` and `git push` over smart HTTP: who may reach which repository, git's own protocol
(repos/smart_http.py), and the deploy that a push to a space triggers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from spacehub.controller.access import can_read, can_write
from spacehub.controller.accounts import Principal
from spacehub.controller.context import ControllerContext
from spacehub.controller.discussions import note_pushed_commits, own_pull_request_refs
from spacehub.controller.repos import find_repo, git_path
from spacehub.controller.spaces import handle_push
from spacehub.db.models import Repo, RepoType
from spacehub.repos import smart_http

SERVICES = smart_http.SERVICES
PUSH = "git-receive-pack"


class GitDenied(Exception):
    """A git client may not do what it asked: `status` is 401, 403 or 404."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class GitTarget:
    repo_id: int
    path: Path
    # For a push by someone who may not write to the repository: the only refs it may update
    # (their own open pull requests'). None: any ref.
    push_refs: tuple[str, ...] | None = None


def git_target(
    ctx: ControllerContext, principal: Principal, type: RepoType, owner: str, name: str, *, write: bool
) -> GitTarget:
    """The repository a git client may reach. Anonymous callers are asked for credentials (401)
    whether or not the repository exists, so that a private repository cannot be told apart from
    a missing one; signed-in callers without access get the same 404 as for a missing one."""
    name = name.removesuffix(".git")
    with ctx.session() as session:
        anonymous = principal.account is None and not principal.internal
        repo = find_repo(session, type, owner, name)
        if repo is None or not can_read(session, principal, repo):
            if anonymous:
                raise GitDenied(401, "Authentication required: use your token as the password")
            raise GitDenied(404, f"Repository {owner}/{name} not found")
        target = GitTarget(repo_id=repo.id, path=git_path(ctx.settings, repo))
        if not write or can_write(session, principal, repo):
            return target
        if anonymous:
            raise GitDenied(401, "Pushing needs a write token as the password")
        account = principal.account
        own = own_pull_request_refs(session, repo, account) if account and principal.can_write else []
        if not own:
            raise GitDenied(
                403,
                f"You may not push to {owner}/{name}: with a write token you may push to your own open "
                "pull requests' refs/pr/N (open one with create_pull_request)",
            )
        return GitTarget(repo_id=repo.id, path=target.path, push_refs=tuple(own))


def _service_config(ctx: ControllerContext) -> dict[str, str]:
    return {
        "receive.maxInputSize": str(ctx.settings.max_body_size),
        "core.hooksPath": str(smart_http.install_hooks(ctx.settings.resolved_data_dir / "git-hooks")),
    }


async def advertise_refs(
    ctx: ControllerContext, target: GitTarget, service: str, protocol: str | None
) -> bytes:
    """The answer to `info/refs?service=...`."""
    return await smart_http.advertise_refs(target.path, service, protocol, _service_config(ctx))


def run_service(
    ctx: ControllerContext,
    target: GitTarget,
    service: str,
    body: AsyncIterator[bytes],
    *,
    gzipped: bool,
    protocol: str | None,
) -> AsyncIterator[bytes]:
    """git's output for a fetch or a push, streamed while its request is still being read."""
    return smart_http.run_service(
        target.path,
        service,
        body,
        gzipped=gzipped,
        git_protocol=protocol,
        config=_service_config(ctx),
        allowed_refs=target.push_refs,
    )


def after_push(ctx: ControllerContext, repo_id: int) -> None:
    """A push landed: deploy the space's new head (or refresh a model's card), and note commits
    pushed to pull requests' refs in their threads."""
    with ctx.session() as session:
        repo = session.get(Repo, repo_id)
        if repo is not None:
            handle_push(ctx, session, repo)
            note_pushed_commits(ctx, session, repo)
