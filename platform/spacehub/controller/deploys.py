"""What an agent needs to run one build: its spec, served by the internal API when the job starts
(so that secrets never sit in Redis, and a job that waited gets the newest variables)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from spacehub.addresses import app_root_path, app_url
from spacehub.controller.context import ControllerContext
from spacehub.controller.oauth import app_scopes, client_id_for, client_secret_for
from spacehub.controller.repos import open_git
from spacehub.controller.spaces import check_commit
from spacehub.controller.volumes import mounts_for
from spacehub.db.models import Build, Repo, Space, SpaceSecret, SpaceVariable
from spacehub.errors import Conflict, NotFound
from spacehub.queue.spec import DeploySpec, OAuthClient
from spacehub.repos.git import GitRepo


def build_and_space(session: Session, build_id: int) -> tuple[Build, Space]:
    """A build and its space (404 when either is gone)."""
    build = session.get(Build, build_id)
    space = session.get(Space, build.space_id) if build is not None else None
    if build is None or space is None:
        raise NotFound(f"no build {build_id}")
    return build, space


def deploy_spec(ctx: ControllerContext, session: Session, build_id: int) -> DeploySpec:
    """Everything an agent needs to build and start `build_id`, secrets included."""
    build, space = build_and_space(session, build_id)
    app = check_commit(ctx, space, build.sha)
    flavor = ctx.flavors.get(build.flavor)
    if flavor is None:
        raise Conflict(f"hardware flavor {build.flavor!r} is not configured any more")
    repo = space.repo
    owner, name = repo.owner.name, repo.name
    return DeploySpec(
        build_id=build.id,
        space_id=space.repo_id,
        space_name=repo.full_name,
        subdomain=space.subdomain,
        sha=build.sha,
        current=space.current_build_id == build.id,
        factory=build.factory,
        sdk=app.sdk,
        app_file=app.app_file,
        app_port=app.app_port,
        sdk_version=app.sdk_version,
        python_version=app.python_version,
        startup_timeout=app.startup_timeout or ctx.settings.default_startup_timeout,
        flavor=flavor,
        title=app.config.title,
        app_url=app_url(ctx.settings, space.subdomain, owner, name, ctx.settings.resolved_public_url),
        root_path=app_root_path(ctx.settings, owner, name),
        preload_from_hub=app.config.preload_from_hub or [],
        variables={
            v.key: v.value
            for v in session.scalars(select(SpaceVariable).where(SpaceVariable.space_id == space.repo_id))
        },
        secrets={
            s.key: ctx.vault.open(s.value)
            for s in session.scalars(select(SpaceSecret).where(SpaceSecret.space_id == space.repo_id))
        },
        oauth=oauth_client(ctx, repo, app.config.hf_oauth_scopes) if app.config.hf_oauth else None,
        volumes=mounts_for(ctx, session, space),
    )


def oauth_client(ctx: ControllerContext, repo: Repo, extra_scopes: object) -> OAuthClient:
    """The credentials of a space that signs its visitors in with the hub (`hf_oauth: true`)."""
    client_id = client_id_for(repo)
    return OAuthClient(
        client_id=client_id,
        client_secret=client_secret_for(ctx, client_id),
        scopes=" ".join(app_scopes(extra_scopes)),
    )


def commit_archive(ctx: ControllerContext, session: Session, build_id: int) -> Iterator[bytes]:
    """The build's commit as a tar stream (the agent's build context)."""
    build, space = build_and_space(session, build_id)
    return archive_chunks(open_git(ctx.settings, space.repo), build.sha)


def repo_archive(ctx: ControllerContext, session: Session, repo_id: int, sha: str) -> Iterator[bytes]:
    """A commit of any repository as a tar stream (what an agent mounts as a repository volume)."""
    repo = session.get(Repo, repo_id)
    git = open_git(ctx.settings, repo) if repo is not None else None
    if git is None or git.resolve(sha) != sha:
        raise NotFound(f"no commit {sha} in repository {repo_id}")
    return archive_chunks(git, sha)


def archive_chunks(git: GitRepo, sha: str) -> Iterator[bytes]:
    """`git archive` of a commit, streamed."""
    proc = git.archive(sha)

    def chunks() -> Iterator[bytes]:
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read(1 << 16):
                yield chunk
        finally:
            proc.stdout.close()
            proc.wait()

    return chunks()


def seal_clear_secrets(ctx: ControllerContext, session: Session) -> int:
    """Encrypt the secrets an older release stored in the clear; how many there were."""
    clear = [s for s in session.scalars(select(SpaceSecret)) if not ctx.vault.is_sealed(s.value)]
    for secret in clear:
        secret.value = ctx.vault.seal(secret.value)
    return len(clear)
