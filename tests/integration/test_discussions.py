"""Discussions and pull requests through huggingface_hub, unmodified: a stranger opens, comments and
proposes; the owner renames, merges (a merge of a space deploys it) and meets a conflict; a pull
request's ref is pushed with plain git."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.utils.gitrepo import LocalRepo, git, with_token
from tests.utils.pages import PageClient, text_of
from tests.utils.platform import Platform


@pytest.fixture
def model(platform: Platform, space_name: str) -> str:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    repo = api.create_repo(f"{space_name}-model").repo_id
    api.upload_file(path_or_fileobj=b"line one\nline two\n", path_in_repo="notes.txt", repo_id=repo)
    return repo


def test_a_stranger_discusses_and_the_owner_moderates(platform: Platform, model: str, make_user) -> None:
    owner = HfApi(endpoint=platform.url, token=platform.admin_token)
    user = make_user()
    stranger = HfApi(endpoint=platform.url, token=user.token)

    opened = stranger.create_discussion(model, title="Typo?", description="Line two looks off.")
    assert (opened.num, opened.title, opened.status, opened.author) == (1, "Typo?", "open", user.name)
    assert not opened.is_pull_request and opened.events[0].content == "Line two looks off."

    reply = owner.comment_discussion(model, 1, "Thanks, looking.")
    mine = stranger.comment_discussion(model, 1, "first version")
    edited = stranger.edit_discussion_comment(model, 1, mine.id, "second version")
    assert edited.content == "second version" and edited.edited
    with pytest.raises(HfHubHTTPError) as refused:
        stranger.edit_discussion_comment(model, 1, reply.id, "not mine")
    assert refused.value.response.status_code == 403

    renamed = owner.rename_discussion(model, 1, "Typo in line two")
    assert (renamed.old_title, renamed.new_title) == ("Typo?", "Typo in line two")
    closed = stranger.change_discussion_status(model, 1, "closed", comment="Fixed elsewhere.")
    assert closed.new_status == "closed"

    details = owner.get_discussion_details(model, 1)
    assert [e.type for e in details.events] == [
        "comment", "comment", "comment", "title-change", "comment", "status-change"
    ]  # fmt: skip
    assert details.status == "closed" and details.title == "Typo in line two"
    assert [d.num for d in owner.get_repo_discussions(model, discussion_status="closed")] == [1]
    assert list(owner.get_repo_discussions(model, discussion_status="open")) == []
    assert [d.author for d in owner.get_repo_discussions(model, author=user.name)] == [user.name]

    reader = HfApi(endpoint=platform.url, token=user.read_token)
    with pytest.raises(HfHubHTTPError) as read_only:
        reader.comment_discussion(model, 1, "with a read token")
    assert read_only.value.response.status_code == 403
    anonymous = HfApi(endpoint=platform.url, token=False)
    assert [d.num for d in anonymous.get_repo_discussions(model)] == [1]


def test_pull_requests_are_proposed_merged_and_refused_on_conflict(
    platform: Platform, model: str, make_user
) -> None:
    owner = HfApi(endpoint=platform.url, token=platform.admin_token)
    stranger = HfApi(endpoint=platform.url, token=make_user().token)

    proposal = stranger.create_commit(
        model,
        operations=[CommitOperationAdd("notes.txt", b"line one\nline 2\n")],
        commit_message="Fix line two",
        create_pr=True,
    )
    assert proposal.pr_num == 1 and proposal.pr_revision == "refs/pr/1"
    rival = stranger.create_commit(
        model,
        operations=[CommitOperationAdd("notes.txt", b"line one\nsecond line\n")],
        commit_message="Reword line two",
        create_pr=True,
    )
    assert owner.hf_hub_download(model, "notes.txt", revision="refs/pr/1") is not None
    details = owner.get_discussion_details(model, 1)
    assert details.is_pull_request and details.status == "open" and details.target_branch == "refs/heads/main"
    assert "+line 2" in (details.diff or "") and [e.type for e in details.events] == ["commit"]
    with pytest.raises(HfHubHTTPError) as not_theirs:
        stranger.merge_pull_request(model, 1)
    assert not_theirs.value.response.status_code == 403

    owner.merge_pull_request(model, 1, comment="Thanks!")
    merged = owner.get_discussion_details(model, 1)
    assert merged.status == "merged" and merged.merge_commit_oid == owner.model_info(model).sha
    assert (
        Path(owner.hf_hub_download(model, "notes.txt", force_download=True)).read_text()
        == "line one\nline 2\n"
    )

    with pytest.raises(HfHubHTTPError) as conflict:
        owner.merge_pull_request(model, rival.pr_num)
    assert conflict.value.response.status_code == 409 and "notes.txt" in str(conflict.value)
    assert owner.get_discussion_details(model, rival.pr_num).status == "open"


def test_a_pull_request_is_pushed_with_git_and_its_merge_deploys_the_space(
    platform: Platform, space_name: str, tmp_path: Path
) -> None:
    from tests.integration.conftest import QUEUED_FLAVOR

    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, {"README.md": "---\nsdk: gradio\n---\n", "app.py": "print('v1')\n"})
    pull = api.create_pull_request(space, title="v2", repo_type="space")
    assert pull.status == "draft"

    clone = LocalRepo.clone_or_init(
        tmp_path / "clone", f"{platform.url}/spaces/{space}", platform.admin_token
    )
    clone.write({"app.py": "print('v2')\n"})
    git("commit", "-q", "-am", "Second version", cwd=clone.path)
    git("push", "-q", with_token(clone.remote, clone.token), f"HEAD:refs/pr/{pull.num}", cwd=clone.path)
    details = api.get_discussion_details(space, pull.num, repo_type="space")
    assert details.status == "open" and [e.summary for e in details.events if e.type == "commit"] == [
        "Second version"
    ]
    before = platform.runtime(space)["sha"]
    api.merge_pull_request(space, pull.num, repo_type="space")
    head = api.space_info(space).sha
    assert head != before and platform.info(space)["sha"] == head
    assert api.get_discussion_details(space, pull.num, repo_type="space").merge_commit_oid == head
    with PageClient(platform.url) as visitor:
        community = text_of(visitor.get(f"/spaces/{space}/discussions").text)
    assert f"#{pull.num} v2" in community and "merged" in community


def test_the_community_tab_lists_threads_and_its_forms_comment_close_and_merge(
    platform: Platform, model: str, make_user
) -> None:
    owner = HfApi(endpoint=platform.url, token=platform.admin_token)
    stranger = HfApi(endpoint=platform.url, token=make_user().token)
    stranger.create_commit(
        model,
        operations=[CommitOperationAdd("more.txt", b"more\n")],
        commit_message="Add more",
        create_pr=True,
    )
    with PageClient(platform.url) as admin:
        assert admin.log_in("admin", platform.admin_token).status_code == 303
        listing = text_of(admin.get(f"/{model}/discussions").text)
        assert "#1 Add more" in listing and "pull request" in listing and "open" in listing

        opened = admin.submit(
            f"/{model}/discussions",
            {"title": "Roadmap", "description": "What next?"},
            page=f"/{model}/discussions",
        )
        assert opened.status_code == 303 and opened.headers["location"].startswith(f"/{model}/discussions/2")
        thread = f"/{model}/discussions/2"
        assert admin.submit(f"{thread}/comment", {"comment": "**Soon.**"}, page=thread).status_code == 303
        page = admin.get(thread).text
        assert "<strong>Soon.</strong>" in page and "What next?" in text_of(page)
        assert admin.submit(f"{thread}/status", {"status": "closed"}, page=thread).status_code == 303
        assert owner.get_discussion_details(model, 2).status == "closed"

        pull = f"/{model}/discussions/1"
        assert "+more" in text_of(admin.get(pull).text)
        assert admin.submit(f"{pull}/merge", {}, page=pull).status_code == 303
        assert owner.get_discussion_details(model, 1).status == "merged"
        assert "more.txt" in owner.list_repo_files(model)
    with PageClient(platform.url) as anonymous:
        page = text_of(anonymous.get(f"/{model}/discussions/1").text)
        assert (
            "Add more" in page
            and "Merge" not in page
            and "Log in" in text_of(anonymous.get(f"/{model}/discussions").text)
        )


def test_the_author_of_a_pull_request_pushes_to_it_and_nowhere_else(
    platform: Platform, model: str, make_user, tmp_path: Path
) -> None:
    """Someone who may not write to a repository pushes with plain git to the pull requests they
    opened, and is refused everywhere else: the main branch, another's pull request, a deletion."""
    author, other = make_user(), make_user()
    mine = HfApi(endpoint=platform.url, token=author.token).create_pull_request(model, title="typo")
    theirs = HfApi(endpoint=platform.url, token=other.token).create_pull_request(model, title="other")
    clone = LocalRepo.clone_or_init(tmp_path / "clone", f"{platform.url}/{model}", author.token)
    clone.write({"notes.txt": "line one\nline 2\n"})
    git("commit", "-q", "-am", "Fix line two", cwd=clone.path)
    remote = with_token(clone.remote, author.token)

    git("push", "-q", remote, f"HEAD:refs/pr/{mine.num}", cwd=clone.path)
    owner = HfApi(endpoint=platform.url, token=platform.admin_token)
    events = owner.get_discussion_details(model, mine.num).events
    assert [e.summary for e in events if e.type == "commit"] == ["Fix line two"]
    for target in ("main", f"refs/pr/{theirs.num}"):
        refused = git("push", remote, f"HEAD:{target}", cwd=clone.path, check=False)
        assert refused.returncode != 0 and "you may push only to your open pull requests" in refused.stderr
    deletion = git("push", remote, f":refs/pr/{mine.num}", cwd=clone.path, check=False)
    assert deletion.returncode != 0 and "cannot be deleted" in deletion.stderr
    assert owner.list_repo_commits(model)[0].title != "Fix line two"

    # Someone with no pull request of theirs open may not push at all.
    stranger = make_user()
    denied = git(
        "push",
        with_token(clone.remote, stranger.token),
        f"HEAD:refs/pr/{mine.num}",
        cwd=clone.path,
        check=False,
    )
    assert denied.returncode != 0 and "your own open pull requests" in denied.stderr
