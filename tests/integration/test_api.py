"""The Hub-shaped API of issue 2: create, info with host, runtime; errors clients understand."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.platform import Platform


def test_create_with_the_hub_payload(platform: Platform, space_name: str) -> None:
    with platform.client() as client:
        response = client.post(
            "/api/repos/create",
            json={
                "name": space_name,
                "organization": None,
                "type": "space",
                "sdk": "streamlit",
                "visibility": "private",
            },
        )
        assert response.status_code == 200
        assert response.json()["url"] == f"{platform.url}/spaces/admin/{space_name}"
        duplicate = client.post(
            "/api/repos/create", json={"name": space_name, "type": "space", "sdk": "streamlit"}
        )
    assert duplicate.status_code == 409 and duplicate.json()["url"].endswith(f"/spaces/admin/{space_name}")
    info = platform.info(f"admin/{space_name}")
    assert info["private"] is True and info["sdk"] == "streamlit"
    assert info["host"] == f"http://{info['subdomain']}.localhost:{platform.port}"
    assert info["runtime"]["stage"] == "NO_APP_FILE"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"name": "x", "type": "space"}, "needs `sdk`"),
        ({"name": "x", "type": "space", "sdk": "flask"}, "needs `sdk`"),
        ({"name": "bad name!", "type": "space", "sdk": "gradio"}, "invalid repository name"),
        ({"name": "x", "type": "notebook"}, "unknown repository type"),
        ({"name": "x", "type": "space", "sdk": "gradio", "hardware": "tpu-v9"}, "unknown hardware"),
        ({"name": "x", "type": "model", "visibility": "protected"}, "only spaces can be protected"),
        ({"type": "space"}, "name"),
    ],
)
def test_bad_create_requests_say_what_is_wrong(platform: Platform, payload: dict, message: str) -> None:
    with platform.client() as client:
        response = client.post("/api/repos/create", json=payload)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert response.headers["x-error-message"]


def test_creating_needs_a_token(platform: Platform) -> None:
    with platform.client("") as client:
        response = client.post("/api/repos/create", json={"name": "x", "type": "space", "sdk": "gradio"})
    assert response.status_code == 401


def test_huggingface_hub_reads_space_info_and_runtime(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, {"README.md": "---\ntitle: Hi\nemoji: 👋\nsdk: gradio\n---\n", "app.py": ""})
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    info = api.space_info(space)
    assert info.id == space and info.sdk == "gradio" and info.host and info.subdomain
    assert info.card_data is not None and info.card_data.title == "Hi"
    runtime = api.get_space_runtime(space)
    assert runtime.stage == "BUILDING" and runtime.requested_hardware == QUEUED_FLAVOR
    with pytest.raises(RepositoryNotFoundError):
        api.space_info(f"admin/{space_name}-missing")


def test_openapi_documents_the_api(platform: Platform) -> None:
    with platform.client() as client:
        schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/repos/create",
        "/api/spaces/{owner}/{name}/runtime",
        "/api/spaces/{owner}/{name}/logs/{kind}",
        "/spaces/{owner}/{name}/git-receive-pack",
        "/api/admin/users/{name}/tokens",
    ):
        assert path in paths, path
    assert not any(p.startswith("/api/internal") for p in paths)


def test_a_deleted_space_never_lends_its_id_to_a_new_one(platform: Platform, space_name: str) -> None:
    """Ids name builds' jobs, logs and images outside the database: reusing one would show a new
    space the old one's build log, or run the old one's image."""
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    first = platform.create_space(space_name + "-a", hardware=QUEUED_FLAVOR)
    first_id = platform.info(first)["_id"]
    api.delete_repo(first, repo_type="space")
    second = platform.create_space(space_name + "-b", hardware=QUEUED_FLAVOR)
    assert int(platform.info(second)["_id"]) > int(first_id)
