"""The reconciler's decisions read what other processes committed meanwhile."""

from spacehub.controller.reconciler import Reconciler
from spacehub.db.migrate import upgrade
from spacehub.db.models import Account, Build, BuildStatus, Repo, RepoType, Space
from spacehub.db.session import get_sessionmaker, session_scope


def test_a_build_superseded_since_the_pass_loaded_it_is_not_failed(database_url: str) -> None:
    url = database_url
    upgrade(url)
    with session_scope(url) as session:
        owner = Account(name="ada")
        repo = Repo(type=RepoType.SPACE, owner=owner, name="demo")
        session.add(Space(repo=repo, sdk="gradio", subdomain="ada-demo"))
        session.flush()
        build = Build(space_id=repo.id, sha="a" * 40, flavor="cpu-basic")
        session.add(build)
        session.flush()
        repo.space.current_build_id = build.id
        space_id, first_id = repo.id, build.id

    # The reconciler's pass loads the build it is about to judge...
    reconciler_session = get_sessionmaker(url)()
    space, build = reconciler_session.get(Space, space_id), reconciler_session.get(Build, first_id)
    assert space is not None and build is not None
    assert Reconciler.still_current(reconciler_session, space, build)

    # ...a newer push commits, supersedes it and cancels its job...
    with session_scope(url) as session:
        session.get(Build, first_id).status = BuildStatus.SUPERSEDED
        newer = Build(space_id=space_id, sha="b" * 40, flavor="cpu-basic")
        session.add(newer)
        session.flush()
        session.get(Space, space_id).current_build_id = newer.id

    # ...and the cancelled job is not taken for a failure of what the space deploys now.
    assert not Reconciler.still_current(reconciler_session, space, build)
    reconciler_session.close()
