"""git clone / git push over smart HTTP, through the edge proxy, with token auth."""

from __future__ import annotations

import redis
from rq import Queue
from rq.job import Job, JobStatus

from spacehub.queue.scheduling import job_id_for_build
from spacehub.state.keys import Keys
from spacehub.state.routes import RouteTable
from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.gitrepo import LocalRepo, git, with_token
from tests.utils.platform import Platform

APP = {"README.md": "---\ntitle: t\nsdk: gradio\n---\n", "app.py": "import gradio\n"}


def test_push_queues_a_build_before_git_returns(platform: Platform, space_name: str, redis_url: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    assert platform.runtime(space)["stage"] == "NO_APP_FILE"
    sha = platform.push(space, APP)
    runtime = platform.runtime(space)
    assert runtime["stage"] == "BUILDING"
    assert runtime["hardware"] == {"current": None, "requested": QUEUED_FLAVOR}
    queue = Queue(f"{platform.namespace}.{QUEUED_FLAVOR}", connection=redis.Redis.from_url(redis_url))
    assert len(queue.get_job_ids()) >= 1
    info = platform.info(space)
    assert info["sha"] == sha
    assert {s["rfilename"] for s in info["siblings"]} == {"README.md", "app.py"}


def test_a_newer_push_supersedes_the_queued_build(
    platform: Platform, space_name: str, redis_url: str
) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(f"{platform.namespace}.{QUEUED_FLAVOR}", connection=connection)
    earlier = set(queue.get_job_ids())
    platform.push(space, APP, message="first")
    (first,) = set(queue.get_job_ids()) - earlier
    platform.push(space, {"app.py": "import gradio  # v2\n"}, message="second")

    # Only the newest build of this space is still waiting; the first one's job is cancelled.
    (second,) = set(queue.get_job_ids()) - earlier
    assert second != first
    assert Job.fetch(first, connection=connection).get_status() == JobStatus.CANCELED
    assert platform.runtime(space)["stage"] == "BUILDING"
    # The cancelled build's log says why it ended; the space's current build (what the edge, the
    # agents and the log endpoint follow) is the waiting one, the second push's.
    cancelled = (platform.data_dir / "logs" / "builds" / f"{first.removeprefix('build-')}.jsonl").read_text()
    assert "a newer commit superseded it" in cancelled
    record = RouteTable(connection, Keys(platform.namespace)).get(platform.info(space)["subdomain"])
    assert record is not None and record.current_build is not None
    assert job_id_for_build(record.current_build) == second


def test_clone_of_a_public_space_needs_no_token(platform: Platform, space_name: str, tmp_path) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, APP)
    result = git("clone", "-q", f"{platform.url}/spaces/{space}", str(tmp_path / "c"))
    assert result.returncode == 0
    assert (tmp_path / "c" / "app.py").read_text() == "import gradio\n"


def test_push_needs_a_write_token(platform: Platform, space_name: str, tmp_path, make_user) -> None:
    owner = make_user()
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR, token=owner.token)
    remote = f"{platform.url}/spaces/{space}"
    LocalRepo.clone_or_init(tmp_path / "first", remote, owner.token).commit_and_push(APP)
    work = tmp_path / "w"
    git("clone", "-q", remote, str(work))
    (work / "x.txt").write_text("x")
    git("add", ".", cwd=work)
    git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x", cwd=work)

    anonymous = git("push", remote, "main", cwd=work, check=False)
    assert anonymous.returncode != 0 and "needs a write token" in anonymous.stderr
    bad = git("push", with_token(remote, "shub_not_a_token"), "main", cwd=work, check=False)
    assert bad.returncode != 0 and "Invalid credentials" in bad.stderr
    read_only = git("push", with_token(remote, owner.read_token), "main", cwd=work, check=False)
    assert read_only.returncode != 0 and "may not push" in read_only.stderr
    stranger = git("push", with_token(remote, make_user().token), "main", cwd=work, check=False)
    assert stranger.returncode != 0 and "may not push" in stranger.stderr
    assert "x.txt" not in {s["rfilename"] for s in platform.info(space)["siblings"]}

    assert git("push", "-q", with_token(remote, owner.token), "main", cwd=work).returncode == 0
    assert "x.txt" in {s["rfilename"] for s in platform.info(space)["siblings"]}


def test_private_spaces_are_invisible_to_git(
    platform: Platform, space_name: str, tmp_path, make_user
) -> None:
    owner = make_user()
    space = platform.create_space(space_name, private=True, hardware=QUEUED_FLAVOR, token=owner.token)
    LocalRepo.clone_or_init(
        tmp_path / "owner", f"{platform.url}/spaces/{space}", owner.token
    ).commit_and_push(APP)
    remote = f"{platform.url}/spaces/{space}"

    anonymous = git("clone", remote, str(tmp_path / "a"), check=False)
    assert anonymous.returncode != 0
    stranger = git("clone", with_token(remote, make_user().token), str(tmp_path / "b"), check=False)
    assert stranger.returncode != 0 and "not found" in stranger.stderr
    missing = git(
        "clone",
        with_token(f"{platform.url}/spaces/{owner.name}/nope", make_user().token),
        str(tmp_path / "c"),
        check=False,
    )
    assert missing.returncode != 0 and "not found" in missing.stderr
    assert git("clone", "-q", with_token(remote, owner.read_token), str(tmp_path / "d")).returncode == 0


def test_only_the_default_branch_deploys(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    repo = platform.repo(space)
    repo.write(APP)
    git("checkout", "-q", "-b", "feature", cwd=repo.path)
    git("add", "-A", cwd=repo.path)
    git("commit", "-qm", "feature", cwd=repo.path)
    git("push", "-q", with_token(repo.remote, repo.token), "feature", cwd=repo.path)
    assert platform.runtime(space)["stage"] == "NO_APP_FILE"
