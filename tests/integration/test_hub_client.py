"""huggingface_hub's HfApi against spacehub, unmodified: each call checked for its effect."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.platform import Platform


@pytest.fixture
def api(platform: Platform) -> HfApi:
    return HfApi(endpoint=platform.url, token=platform.admin_token)


def test_whoami(api: HfApi, make_user) -> None:
    assert api.whoami()["name"] == "admin"
    user = make_user()
    me = HfApi(endpoint=api.endpoint, token=user.read_token).whoami()
    assert me["name"] == user.name and me["auth"]["accessToken"]["role"] == "read"
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=api.endpoint, token="shub_nonsense").whoami()


def test_model_files_round_trip(api: HfApi, space_name: str, tmp_path) -> None:
    repo = f"admin/{space_name}"
    url = api.create_repo(repo)
    assert url.repo_id == repo and api.repo_exists(repo)
    assert api.create_repo(repo, exist_ok=True).repo_id == repo
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 100)
    (folder / "README.md").write_text("---\nlicense: mit\ntags: [tiny, test]\n---\n# Tiny\n")
    first = api.upload_folder(repo_id=repo, folder_path=folder)
    assert first.oid and len(first.oid) == 40
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="notes/hello.txt", repo_id=repo)
    assert sorted(api.list_repo_files(repo)) == [
        "README.md",
        "config.json",
        "notes/hello.txt",
        "sub/weights.bin",
    ]

    info = api.model_info(repo)
    assert info.card_data is not None and info.card_data.license == "mit" and "tiny" in (info.tags or [])
    tree = {e.path: e for e in api.list_repo_tree(repo, recursive=True)}
    assert tree["sub/weights.bin"].size == 25600 and tree["sub"].__class__.__name__ == "RepoFolder"
    paths = api.get_paths_info(repo, ["config.json", "sub", "missing.txt"])
    assert [p.path for p in paths] == ["config.json", "sub"]

    local = hf_hub_download(
        repo, "sub/weights.bin", endpoint=api.endpoint, token=api.token, cache_dir=tmp_path / "cache"
    )
    assert Path(local).read_bytes() == bytes(range(256)) * 100
    snapshot = snapshot_download(repo, endpoint=api.endpoint, token=api.token, cache_dir=tmp_path / "snap")
    assert (tmp_path / "snap").exists() and Path(snapshot, "notes", "hello.txt").read_text() == "hello"
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "nope.txt", endpoint=api.endpoint, token=api.token, cache_dir=tmp_path / "c2")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            repo,
            "config.json",
            revision="no-such-branch",
            endpoint=api.endpoint,
            token=api.token,
            cache_dir=tmp_path / "c3",
        )

    commit = api.create_commit(
        repo,
        operations=[
            CommitOperationDelete("notes/", is_folder=True),
            CommitOperationDelete("config.json"),
            CommitOperationAdd("config.json", b'{"a": 2}'),
        ],
        commit_message="Rework",
    )
    assert sorted(api.list_repo_files(repo)) == ["README.md", "config.json", "sub/weights.bin"]
    assert api.list_repo_refs(repo).branches[0].target_commit == commit.oid
    assert api.file_exists(repo, "config.json") and not api.file_exists(repo, "notes/hello.txt")


def test_a_stale_parent_commit_is_refused_and_changes_nothing(api: HfApi, space_name: str) -> None:
    repo = f"admin/{space_name}"
    api.create_repo(repo)
    old = api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo).oid
    new = api.upload_file(path_or_fileobj=b"2", path_in_repo="a.txt", repo_id=repo).oid
    with pytest.raises(HfHubHTTPError) as error:
        api.create_commit(
            repo, operations=[CommitOperationAdd("b.txt", b"x")], commit_message="late", parent_commit=old
        )
    assert error.value.response.status_code == 409
    assert api.model_info(repo).sha == new and not api.file_exists(repo, "b.txt")


def test_listing(api: HfApi, space_name: str, make_user) -> None:
    user = make_user()
    theirs = HfApi(endpoint=api.endpoint, token=user.token)
    theirs.create_repo(f"{user.name}/{space_name}-public", repo_type="space", space_sdk="gradio")
    theirs.create_repo(
        f"{user.name}/{space_name}-secret", repo_type="space", space_sdk="gradio", private=True
    )
    mine = [s.id for s in theirs.list_spaces(author=user.name)]
    assert sorted(mine) == [f"{user.name}/{space_name}-public", f"{user.name}/{space_name}-secret"]
    anonymous = HfApi(endpoint=api.endpoint, token=False)
    assert [s.id for s in anonymous.list_spaces(author=user.name)] == [f"{user.name}/{space_name}-public"]
    assert [s.id for s in anonymous.list_spaces(search=f"{space_name}-pub")] == [
        f"{user.name}/{space_name}-public"
    ]
    assert len(list(theirs.list_spaces(author=user.name, limit=1))) == 1
    for space in theirs.list_spaces(author=user.name, sort="lastModified"):
        assert space.sdk == "gradio"


def test_pagination_follows_link_headers(platform: Platform, api: HfApi, space_name: str) -> None:
    repo = f"admin/{space_name}"
    api.create_repo(repo)
    api.create_commit(
        repo, operations=[CommitOperationAdd(f"f{i}.txt", b"x") for i in range(5)], commit_message="5"
    )
    with platform.client() as client:
        first = client.get(f"/api/models/{repo}/tree/main", params={"limit": 2})
        assert len(first.json()) == 2 and 'rel="next"' in first.headers["link"]
        second = client.get(first.links["next"]["url"])
        assert [e["path"] for e in second.json()] == ["f2.txt", "f3.txt"]


def test_resolve_headers_and_ranges(platform: Platform, api: HfApi, space_name: str) -> None:
    repo = f"admin/{space_name}"
    api.create_repo(repo)
    sha = api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="digits.txt", repo_id=repo).oid
    with platform.client("") as client:
        head = client.head(f"/{repo}/resolve/main/digits.txt")
        assert head.status_code == 200
        assert head.headers["x-repo-commit"] == sha and head.headers["content-length"] == "10"
        assert head.headers["etag"].startswith('"') and head.headers["x-content-type-options"] == "nosniff"
        part = client.get(f"/{repo}/resolve/{sha}/digits.txt", headers={"Range": "bytes=2-4"})
        assert (
            part.status_code == 206
            and part.content == b"234"
            and part.headers["content-range"] == "bytes 2-4/10"
        )
        missing = client.get(f"/{repo}/resolve/main/nope.txt")
        assert missing.status_code == 404 and missing.headers["x-error-code"] == "EntryNotFound"
        assert missing.headers["x-repo-commit"] == sha
        assert (
            client.get(f"/{repo}/resolve/nobranch/digits.txt").headers["x-error-code"] == "RevisionNotFound"
        )
        assert client.get(f"/admin/{space_name}-x/resolve/main/a").headers["x-error-code"] == "RepoNotFound"


def test_paths_that_leave_the_repository_are_refused(platform: Platform, api: HfApi, space_name: str) -> None:
    repo = f"admin/{space_name}"
    api.create_repo(repo)
    for bad in ("../escape.txt", "/etc/passwd", ".git/config", "a/../../b", "dir\\file"):
        payload = (
            '{"key": "header", "value": {"summary": "x"}}\n'
            f'{{"key": "file", "value": {{"path": "{bad.replace(chr(92), chr(92) * 2)}", '
            '"content": "eA==", "encoding": "base64"}}\n'
        )
        with platform.client() as client:
            response = client.post(
                f"/api/models/{repo}/commit/main",
                content=payload,
                headers={"Content-Type": "application/x-ndjson"},
            )
        assert response.status_code == 400, bad
        assert response.headers["x-error-message"]
    assert api.list_repo_files(repo) == []


def test_a_commit_through_the_api_deploys_the_space(api: HfApi, platform: Platform, space_name: str) -> None:
    space = f"admin/{space_name}"
    api.create_repo(space, repo_type="space", space_sdk="gradio", space_hardware=QUEUED_FLAVOR)
    api.upload_file(
        path_or_fileobj=b"import gradio\n", path_in_repo="app.py", repo_id=space, repo_type="space"
    )
    runtime = api.get_space_runtime(space)
    assert runtime.stage == "BUILDING"


def test_invalid_readme_metadata_is_refused_by_the_client(api: HfApi, space_name: str) -> None:
    space = f"admin/{space_name}"
    api.create_repo(space, repo_type="space", space_sdk="gradio", space_hardware=QUEUED_FLAVOR)
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(
            path_or_fileobj=b"---\nsdk: flask\n---\n",
            path_in_repo="README.md",
            repo_id=space,
            repo_type="space",
        )


def test_space_settings(platform: Platform, api: HfApi, space_name: str) -> None:
    space = f"admin/{space_name}"
    api.create_repo(space, repo_type="space", space_sdk="gradio", space_hardware=QUEUED_FLAVOR)
    api.upload_file(
        path_or_fileobj=b"import gradio\n", path_in_repo="app.py", repo_id=space, repo_type="space"
    )
    hardware = {h.name: h for h in api.list_spaces_hardware()}
    assert hardware["cpu-basic"].pretty_name == "CPU basic" and hardware["t4-small"].accelerator is not None
    runtime = api.request_space_hardware(space, "cpu-basic")
    assert runtime.requested_hardware == "cpu-basic"
    assert api.set_space_sleep_time(space, 3600).sleep_time == 3600
    paused = api.pause_space(space)
    assert paused.stage == "PAUSED"
    # Paused, it serves nothing: the restart builds with no app answering meanwhile.
    assert api.restart_space(space, factory_reboot=True).stage == "BUILDING"

    api.add_space_variable(space, "GREETING", "hello", description="shown")
    variables = api.get_space_variables(space)
    assert variables["GREETING"].value == "hello" and variables["GREETING"].description == "shown"
    api.delete_space_variable(space, "GREETING")
    assert "GREETING" not in api.get_space_variables(space)

    def secrets() -> dict[str, dict[str, str]]:
        with platform.client() as client:
            return dict(client.get(f"/api/spaces/{space}/secrets").json())

    api.add_space_secret(space, "API_KEY", "s3cr3t-value-12345", description="for the model")
    assert secrets()["API_KEY"]["description"] == "for the model"
    assert "s3cr3t-value-12345" not in str(secrets())
    api.delete_space_secret(space, "API_KEY")
    assert "API_KEY" not in secrets()
    with pytest.raises(HfHubHTTPError) as error:
        api.add_space_secret(space, "SPACE_ID", "x")
    assert error.value.response.status_code == 400


def test_duplicate_copies_files_and_variables_but_not_secrets(
    platform: Platform, api: HfApi, space_name: str
) -> None:
    source = f"admin/{space_name}"
    api.create_repo(source, repo_type="space", space_sdk="gradio", space_hardware=QUEUED_FLAVOR)
    api.upload_file(
        path_or_fileobj=b"import gradio\n", path_in_repo="app.py", repo_id=source, repo_type="space"
    )
    api.add_space_variable(source, "COLOR", "teal")
    api.add_space_secret(source, "TOKEN", "never-copied-9876")
    copy = api.duplicate_repo(
        source, f"admin/{space_name}-copy", repo_type="space", space_hardware=QUEUED_FLAVOR
    )
    assert copy.repo_id == f"admin/{space_name}-copy"
    assert api.list_repo_files(copy.repo_id, repo_type="space") == ["app.py"]
    assert api.get_space_variables(copy.repo_id)["COLOR"].value == "teal"
    with platform.client() as client:
        assert client.get(f"/api/spaces/{copy.repo_id}/secrets").json() == {}
        assert "TOKEN" in client.get(f"/api/spaces/{source}/secrets").json()
    private_copy = api.duplicate_repo(
        source, f"admin/{space_name}-copy2", repo_type="space", space_hardware=QUEUED_FLAVOR, private=True
    )
    assert api.space_info(private_copy.repo_id).private is True


def test_duplicate_a_model_with_its_history(api: HfApi, space_name: str) -> None:
    source = f"admin/{space_name}"
    api.create_repo(source)
    api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=source)
    api.upload_file(path_or_fileobj=b"2", path_in_repo="b.txt", repo_id=source)
    copy = api.duplicate_repo(source, f"{source}-copy")
    assert sorted(api.list_repo_files(copy.repo_id)) == ["a.txt", "b.txt"]
    assert [c.commit_id for c in api.list_repo_commits(copy.repo_id)] == [
        c.commit_id for c in api.list_repo_commits(source)
    ]


def test_visibility_move_and_delete(api: HfApi, space_name: str) -> None:
    repo = f"admin/{space_name}"
    api.create_repo(repo, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n", path_in_repo="data.csv", repo_id=repo, repo_type="dataset")
    anonymous = HfApi(endpoint=api.endpoint, token=False)
    assert anonymous.dataset_info(repo).id == repo
    api.update_repo_settings(repo, repo_type="dataset", private=True)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.dataset_info(repo)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.list_repo_files(repo, repo_type="dataset")
    assert repo not in [d.id for d in anonymous.list_datasets(author="admin")]
    api.move_repo(repo, f"{repo}-moved", repo_type="dataset")
    assert api.list_repo_files(f"{repo}-moved", repo_type="dataset") == ["data.csv"]
    api.delete_repo(f"{repo}-moved", repo_type="dataset")
    assert not api.repo_exists(f"{repo}-moved", repo_type="dataset")


def test_unsupported_hub_features_are_clear_4xx(platform: Platform, api: HfApi, space_name: str) -> None:
    space = f"admin/{space_name}"
    api.create_repo(space, repo_type="space", space_sdk="gradio", space_hardware=QUEUED_FLAVOR)
    with pytest.raises(HfHubHTTPError) as error:
        api.enable_space_dev_mode(space)
    assert error.value.response.status_code == 400
    with platform.client() as client:
        for path in ("replicas", "storage"):
            response = client.post(f"/api/spaces/{space}/{path}", json={})
            assert response.status_code == 400 and "does not offer" in response.json()["error"]
