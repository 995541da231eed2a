"""Buckets through `huggingface_hub` as the Hub serves them (create, info, list, settings, delete,
listing, plain-HTTP downloads through HfFileSystem, deletes), uploads on the bucket's page within
its quota, and the volumes a space asks for (`set_space_volumes`), checked before they are kept.
Mounting them in running apps is tested in tests/e2e/test_hosts.py."""

from __future__ import annotations

import os
import secrets

import httpx
import pytest
from huggingface_hub import HfApi, HfFileSystem, Volume
from huggingface_hub.errors import BucketNotFoundError, HfHubHTTPError

from tests.conftest import User
from tests.utils.pages import PageClient, text_of
from tests.utils.platform import Platform


def api_for(platform: Platform, user: User) -> HfApi:
    return HfApi(endpoint=platform.url, token=user.token)


def upload_on_page(platform: Platform, user: User, bucket: str, path: str, content: bytes) -> str:
    """Upload through the bucket's page, as a signed-in user does; the notice or error it shows."""
    with PageClient(platform.url) as pages:
        assert pages.log_in(user.name, user.token).status_code == 303
        folder, _, name = path.rpartition("/")
        answer = pages.http.post(
            f"/buckets/{bucket}/upload",
            data={"csrf": pages.csrf(f"/buckets/{bucket}"), "folder": folder},
            files={"file": (name, content)},
        )
        assert answer.status_code == 303, answer.text
        return text_of(pages.get(answer.headers["location"]).text)


def bucket_dir(platform: Platform, marker: str) -> str:
    """The bucket's directory in the bucket store, found by a file only it holds."""
    store = platform.data_dir / "buckets"
    found = [d for d in store.iterdir() if (d / marker).is_file()]
    assert len(found) == 1, found
    return str(found[0])


def test_buckets_are_created_listed_shared_and_deleted_with_the_client(platform: Platform, make_user) -> None:
    alice, bob = make_user(), make_user()
    api = api_for(platform, alice)
    url = api.create_bucket("data")
    assert url.bucket_id == f"{alice.name}/data" and url.url == f"{platform.url}/buckets/{alice.name}/data"
    api.create_bucket("data", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_bucket(f"{alice.name}/data")
    assert exists.value.response.status_code == 409
    api.create_bucket("secret", private=True)

    info = api.bucket_info(f"{alice.name}/data")
    assert (info.id, info.private, info.size, info.total_files) == (f"{alice.name}/data", False, 0, 0)
    assert sorted(b.id for b in api.list_buckets()) == [f"{alice.name}/data", f"{alice.name}/secret"]

    others = api_for(platform, bob)
    assert [b.id for b in others.list_buckets(namespace=alice.name)] == [f"{alice.name}/data"]
    with pytest.raises(BucketNotFoundError):
        others.bucket_info(f"{alice.name}/secret")
    with pytest.raises(HfHubHTTPError) as refused:
        others.delete_bucket(f"{alice.name}/data")
    assert refused.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as no_namespace:
        others.create_bucket(f"{alice.name}/mine")
    assert no_namespace.value.response.status_code == 403

    api.update_bucket_settings(f"{alice.name}/secret", private=False)
    assert others.bucket_info(f"{alice.name}/secret").private is False
    api.delete_bucket(f"{alice.name}/secret")
    with pytest.raises(BucketNotFoundError):
        api.bucket_info(f"{alice.name}/secret")
    api.delete_bucket(f"{alice.name}/secret", missing_ok=True)


def test_bucket_files_go_in_on_the_page_and_come_out_over_plain_http(platform: Platform, make_user) -> None:
    alice = make_user()
    api = api_for(platform, alice)
    bucket = f"{alice.name}/files"
    api.create_bucket(bucket, private=True)
    content = b"0123456789" * 1000
    assert "runs/one.bin is uploaded (10,000 bytes)" in upload_on_page(
        platform, alice, bucket, "runs/one.bin", content
    )

    top = list(api.list_bucket_tree(bucket))
    assert [(e.type, e.path) for e in top] == [("directory", "runs")]
    files = list(api.list_bucket_tree(bucket, recursive=True))
    assert [(e.path, getattr(e, "size", None)) for e in files] == [("runs", None), ("runs/one.bin", 10_000)]
    assert [f.path for f in api.get_bucket_paths_info(bucket, ["runs/one.bin", "missing"])] == [
        "runs/one.bin"
    ]
    assert api.bucket_info(bucket).size == 10_000

    fs = HfFileSystem(endpoint=platform.url, token=alice.token)
    with fs.open(f"hf://buckets/{bucket}/runs/one.bin", "rb", block_size=1024) as handle:
        handle.seek(5_005)
        assert handle.read(7) == b"5678901"
    assert fs.cat_file(f"hf://buckets/{bucket}/runs/one.bin") == content
    anonymous = httpx.get(f"{platform.url}/buckets/{bucket}/resolve/runs/one.bin", trust_env=False)
    assert anonymous.status_code == 404  # a private bucket is invisible

    # Uploading from the client needs Xet: the client's Xet session stops at the hub's 501, whose
    # message says where to upload instead.
    with pytest.raises(ConnectionError, match="501"):
        api.batch_bucket_files(bucket, add=[(b"hello", "hello.txt")])
    token = httpx.get(
        f"{platform.url}/api/buckets/{bucket}/xet-write-token",
        headers={"Authorization": f"Bearer {alice.token}"},
        trust_env=False,
    )
    assert token.status_code == 501 and f"/buckets/{bucket}" in token.json()["error"]

    api.batch_bucket_files(bucket, delete=["runs/one.bin"])
    assert [e.path for e in api.list_bucket_tree(bucket, recursive=True)] == ["runs"]


def test_links_an_app_leaves_in_a_bucket_are_never_followed(platform: Platform, make_user) -> None:
    alice = make_user()
    api = api_for(platform, alice)
    bucket = f"{alice.name}/links"
    api.create_bucket(bucket)
    upload_on_page(platform, alice, bucket, "marker.txt", b"mine")
    root = bucket_dir(platform, "marker.txt")
    # What an app could write through its mount: links to the host's files and folders.
    os.symlink("/etc/passwd", os.path.join(root, "passwd"))
    os.symlink("/etc", os.path.join(root, "etc"))

    assert [e.path for e in api.list_bucket_tree(bucket, recursive=True)] == ["marker.txt"]
    for path in ("passwd", "etc/passwd", "etc/hostname"):
        answer = httpx.get(f"{platform.url}/buckets/{bucket}/resolve/{path}", trust_env=False)
        assert answer.status_code == 404, path
    assert api.bucket_info(bucket).total_files == 1
    message = upload_on_page(platform, alice, bucket, "etc/evil.txt", b"x")
    assert "not a folder of the bucket" in message
    assert not os.path.exists("/etc/evil.txt")


def test_a_bucket_keeps_to_its_quota(platform: Platform, make_user) -> None:
    alice = make_user()
    api = api_for(platform, alice)
    bucket = f"{alice.name}/small"
    api.create_bucket(bucket)
    owner = httpx.put(
        f"{platform.url}/api/buckets/{bucket}/settings",
        json={"quota": 10**12},
        headers={"Authorization": f"Bearer {alice.token}"},
        trust_env=False,
    )
    assert owner.status_code == 403 and "administrator" in owner.json()["error"]
    with platform.client() as admin:
        assert admin.put(f"/api/buckets/{bucket}/settings", json={"quota": 1000}).status_code == 200
        assert admin.get(f"/api/buckets/{bucket}").json()["quota"] == 1000
    assert "is uploaded" in upload_on_page(platform, alice, bucket, "a.bin", b"a" * 600)
    refused = upload_on_page(platform, alice, bucket, "b.bin", b"b" * 600)
    assert "holds 600 of its 1,000 bytes" in refused and "does not fit" in refused
    assert "is uploaded" in upload_on_page(platform, alice, bucket, "a.bin", b"a" * 900)  # a replacement
    assert api.bucket_info(bucket).size == 900


@pytest.fixture
def empty_space(platform: Platform, make_user) -> tuple[User, str]:
    alice = make_user()
    space = f"{alice.name}/s-{secrets.token_hex(3)}"
    api_for(platform, alice).create_repo(space, repo_type="space", space_sdk="gradio")
    return alice, space


def test_volumes_are_checked_before_they_are_kept(platform: Platform, make_user, empty_space) -> None:
    alice, space = empty_space
    api = api_for(platform, alice)
    api.create_bucket("store")
    model = api.create_repo(f"{alice.name}/m-{secrets.token_hex(3)}").repo_id
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="weights/config.json", repo_id=model)
    bob = make_user()
    api_for(platform, bob).create_bucket("theirs")

    def refused(volumes: list[Volume], status: int, words: str) -> None:
        with pytest.raises(HfHubHTTPError) as error:
            api.set_space_volumes(space, volumes)
        assert error.value.response.status_code == status, error.value
        assert words in str(error.value), error.value

    bucket = f"{alice.name}/store"
    refused([Volume(type="bucket", source=bucket, mount_path="data")], 400, "absolute path")
    refused([Volume(type="bucket", source=bucket, mount_path="/etc/app")], 400, "system's own files")
    refused([Volume(type="bucket", source=bucket, mount_path="/home/user")], 400, "app's code")
    refused([Volume(type="bucket", source=bucket, mount_path="/data", path="sub")], 400, "mounted whole")
    refused([Volume(type="bucket", source=f"{alice.name}/nope", mount_path="/data")], 404, "not found")
    refused([Volume(type="bucket", source=f"{bob.name}/theirs", mount_path="/data")], 403, "write access")
    refused([Volume(type="model", source=model, mount_path="/m", read_only=False)], 400, "read-only")
    refused([Volume(type="model", source=model, mount_path="/m", revision="v9")], 404, "no revision")
    refused(
        [
            Volume(type="bucket", source=bucket, mount_path="/data"),
            Volume(type="model", source=model, mount_path="/data/model"),
        ],
        400,
        "overlap",
    )
    assert api.get_space_runtime(space).volumes is None

    api.set_space_volumes(
        space,
        [
            Volume(type="bucket", source=bucket.upper(), mount_path="/data/"),
            Volume(type="bucket", source=f"{bob.name}/theirs", mount_path="/shared", read_only=True),
            Volume(type="model", source=model, mount_path="/models", path="weights"),
        ],
    )
    mounted = api.get_space_runtime(space).volumes
    assert [(v.type, v.source, v.mount_path, v.read_only, v.revision, v.path) for v in mounted] == [
        ("bucket", bucket, "/data", False, None, None),
        ("bucket", f"{bob.name}/theirs", "/shared", True, None, None),
        ("model", model, "/models", True, "main", "weights"),
    ]

    with pytest.raises(HfHubHTTPError) as in_use:
        api.delete_bucket(bucket)
    assert in_use.value.response.status_code == 409 and space in str(in_use.value)
    api.delete_space_volumes(space)
    assert api.get_space_runtime(space).volumes is None
    with pytest.raises(HfHubHTTPError):
        api.delete_space_volumes(space)

    api.set_space_volumes(space, [Volume(type="bucket", source=bucket, mount_path="/data")])
    api.delete_repo(space, repo_type="space")  # deleting a space never deletes its buckets
    assert api.bucket_info(bucket).id == bucket
    api.delete_bucket(bucket)  # and nothing mounts it any more


def test_static_spaces_have_no_volumes(platform: Platform, make_user) -> None:
    alice = make_user()
    api = api_for(platform, alice)
    space = f"{alice.name}/static-{secrets.token_hex(3)}"
    api.create_repo(space, repo_type="space", space_sdk="static")
    api.create_bucket("b")
    with pytest.raises(HfHubHTTPError) as error:
        api.set_space_volumes(space, [Volume(type="bucket", source=f"{alice.name}/b", mount_path="/data")])
    assert error.value.response.status_code == 400 and "static" in str(error.value)


def test_volumes_given_at_creation_and_duplication_are_kept(platform: Platform, make_user) -> None:
    alice = make_user()
    api = api_for(platform, alice)
    api.create_bucket("kept")
    volumes = [Volume(type="bucket", source=f"{alice.name}/kept", mount_path="/data")]
    space = f"{alice.name}/made-{secrets.token_hex(3)}"
    api.create_repo(space, repo_type="space", space_sdk="gradio", space_volumes=volumes)
    assert [v.mount_path for v in api.get_space_runtime(space).volumes] == ["/data"]

    plain = f"{alice.name}/copy-{secrets.token_hex(3)}"
    api.duplicate_repo(space, plain, repo_type="space")
    assert api.get_space_runtime(plain).volumes is None  # a copy gets only the volumes it is given
    mounted = f"{alice.name}/copy-{secrets.token_hex(3)}"
    read_only = [Volume(type="bucket", source=f"{alice.name}/kept", mount_path="/in", read_only=True)]
    api.duplicate_repo(space, mounted, repo_type="space", space_volumes=read_only)
    assert [(v.mount_path, v.read_only) for v in api.get_space_runtime(mounted).volumes] == [("/in", True)]
    again = f"{alice.name}/again-{secrets.token_hex(3)}"
    with pytest.raises(HfHubHTTPError) as refused:
        api.create_repo(
            again,
            repo_type="space",
            space_sdk="gradio",
            space_volumes=[Volume(type="bucket", source=f"{alice.name}/kept", mount_path="/proc/x")],
        )
    assert refused.value.response.status_code == 400
    assert not api.repo_exists(again, repo_type="space")  # nothing half-made is left


def test_a_space_mounts_only_what_its_owner_may_use(platform: Platform, make_user) -> None:
    """An organization's space mounts what the organization may read; a member's own private
    bucket is not the organization's to mount, even when the member sets it."""
    alice = make_user()
    org = "o" + secrets.token_hex(4)
    with platform.client() as admin:
        assert admin.post("/api/admin/orgs", json={"name": org}).status_code == 201
        assert admin.post(f"/api/admin/orgs/{org}/members", json={"user": alice.name}).status_code == 204
    api = api_for(platform, alice)
    space = f"{org}/s-{secrets.token_hex(3)}"
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    api.create_bucket("mine", private=True)
    api.create_bucket(f"{org}/shared")
    with pytest.raises(HfHubHTTPError) as refused:
        api.set_space_volumes(space, [Volume(type="bucket", source=f"{alice.name}/mine", mount_path="/data")])
    assert refused.value.response.status_code == 403 and f"{org} may not read" in str(refused.value)
    api.set_space_volumes(space, [Volume(type="bucket", source=f"{org}/shared", mount_path="/data")])
    assert [v.source for v in api.get_space_runtime(space).volumes] == [f"{org}/shared"]
