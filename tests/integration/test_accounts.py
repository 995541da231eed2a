"""Users, organizations and tokens through the admin API, as the Hub clients see them."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.platform import Platform


def test_members_create_spaces_in_their_organization(platform: Platform, space_name: str, make_user) -> None:
    member, outsider = make_user(), make_user()
    org = "org-" + space_name
    with platform.client() as client:
        assert client.post("/api/admin/orgs", json={"name": org}).status_code == 201
        assert client.post(f"/api/admin/orgs/{org}/members", json={"user": member.name}).status_code == 204
    api = HfApi(endpoint=platform.url, token=member.token)
    url = api.create_repo(
        f"{org}/demo", repo_type="space", space_sdk="gradio", space_hardware=QUEUED_FLAVOR, private=True
    )
    assert url.repo_id == f"{org}/demo"
    assert [o["name"] for o in api.whoami()["orgs"]] == [org]
    with pytest.raises(HfHubHTTPError) as error:
        HfApi(endpoint=platform.url, token=outsider.token).create_repo(
            f"{org}/intrusion", repo_type="space", space_sdk="gradio"
        )
    assert error.value.response.status_code == 403
    # Private to the organization: members see it, others do not.
    assert api.space_info(f"{org}/demo").private is True
    assert not HfApi(endpoint=platform.url, token=outsider.token).repo_exists(
        f"{org}/demo", repo_type="space"
    )


def test_tokens_are_shown_once_stored_hashed_and_revocable(platform: Platform, make_user) -> None:
    user = make_user()
    with platform.client() as client:
        created = client.post(
            f"/api/admin/users/{user.name}/tokens", json={"name": "ci", "role": "write"}
        ).json()
        listed = client.get("/api/admin/tokens").json()
    assert created["token"].startswith("shub_")
    assert all("token" not in t for t in listed) and created["token"] not in str(listed)
    # The database and its write-ahead log (where a fresh write sits until a checkpoint).
    files = platform.database_files()
    if platform.database is None:
        assert {f.name for f in files} >= {"spacehub.db", "spacehub.db-wal"}
    assert not [f.name for f in files if created["token"].encode() in f.read_bytes()]
    assert [f.name for f in files if user.name.encode() in f.read_bytes()]  # the search sees fresh writes
    api = HfApi(endpoint=platform.url, token=created["token"])
    assert api.whoami()["name"] == user.name
    with platform.client() as client:
        revoked = client.delete(f"/api/admin/tokens/{created['id']}").json()
    assert revoked["revoked"] is True
    with pytest.raises(HfHubHTTPError):
        api.whoami()


def test_disabled_users_lose_access_at_once(platform: Platform, make_user) -> None:
    user = make_user()
    api = HfApi(endpoint=platform.url, token=user.token)
    assert api.whoami()["name"] == user.name
    with platform.client() as client:
        client.post(f"/api/admin/users/{user.name}/disable").raise_for_status()
    with pytest.raises(HfHubHTTPError):
        api.whoami()
    with platform.client() as client:
        client.post(f"/api/admin/users/{user.name}/enable").raise_for_status()
    assert api.whoami()["name"] == user.name


def test_only_admins_administer(platform: Platform, make_user) -> None:
    user = make_user()
    with platform.client(user.token) as client:
        assert client.get("/api/admin/users").status_code == 403
        assert client.post("/api/admin/users", json={"name": "mallory"}).status_code == 403
    with platform.client("") as client:
        assert client.get("/api/admin/users").status_code == 401
