"""The hub's pages without JavaScript: what they show, who may see them, and what their forms do
with good and bad input. (The browser tests in tests/e2e/test_web.py drive the live parts.)"""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.pages import PageClient, text_of
from tests.utils.platform import Platform


def cards(markup: str) -> list[str]:
    """The spaces a gallery page shows, in order."""
    return re.findall(r'<a class="card-link" href="/spaces/([^"]+)"', markup)


def signed_up(platform: Platform, name: str | None = None, password: str = "a long password") -> PageClient:
    client = PageClient(platform.url)
    response = client.submit(
        "/join", {"name": name or "p" + secrets.token_hex(4), "password": password}, page="/join"
    )
    assert response.status_code == 303, text_of(response.text)
    return client


@pytest.fixture
def admin_pages(platform: Platform):
    with PageClient(platform.url) as client:
        assert client.log_in("admin", platform.admin_token).status_code == 303
        yield client


def test_the_gallery_searches_filters_sorts_and_pages(platform: Platform, admin_pages: PageClient) -> None:
    tag = "g" + secrets.token_hex(3)
    for i in range(26):
        platform.create_space(f"{tag}-{i:02}", hardware=QUEUED_FLAVOR)
    platform.create_space(f"{tag}-lit", sdk="streamlit", hardware=QUEUED_FLAVOR)

    first = admin_pages.get("/spaces", params={"q": tag, "sort": "created"})
    assert "27 spaces" in text_of(first.text)
    assert len(cards(first.text)) == 24 and 'rel="next"' in first.text
    second = admin_pages.get("/spaces", params={"q": tag, "sort": "created", "page": 2})
    assert len(cards(second.text)) == 3 and set(cards(first.text)).isdisjoint(cards(second.text))
    assert cards(admin_pages.get("/spaces", params={"q": tag, "sdk": "streamlit"}).text) == [
        f"admin/{tag}-lit"
    ]

    liked = admin_pages.submit(f"/spaces/admin/{tag}-07/like", {})
    assert liked.status_code == 303 and "Liked" in httpx.URL(liked.headers["location"]).params["notice"]
    assert cards(admin_pages.get("/", params={"q": tag, "sort": "likes"}).text)[0] == f"admin/{tag}-07"
    assert cards(admin_pages.get("/", params={"q": tag}).text)[0] == f"admin/{tag}-07"  # trending
    # Out-of-range input falls back instead of failing.
    assert admin_pages.get("/spaces", params={"q": tag, "page": 99, "sort": "nonsense"}).status_code == 200
    assert admin_pages.get("/spaces", params={"page": 0}).status_code == 400


def test_every_form_needs_its_csrf_token(platform: Platform, admin_pages: PageClient) -> None:
    missing = admin_pages.http.post("/logout", data={})
    assert missing.status_code == 403 and "reload the page" in text_of(missing.text)
    with PageClient(platform.url) as other:
        foreign = other.csrf("/login")
    forged = admin_pages.http.post("/settings/tokens", data={"csrf": foreign, "name": "x"})
    assert forged.status_code == 403
    assert admin_pages.get("/settings/tokens").status_code == 200  # still logged in


def test_logging_in_takes_a_password_or_a_write_token(platform: Platform, make_user) -> None:
    user = make_user()
    with PageClient(platform.url) as client:
        wrong = client.log_in(user.name, "not it")
        assert wrong.status_code == 400 and "Wrong user name or password" in text_of(wrong.text)
        assert client.log_in(user.name, user.read_token).status_code == 400
        assert client.get("/settings/tokens").status_code == 303
        response = client.submit(
            "/login", {"name": user.name, "password": user.token, "next": "//evil.example/x"}, page="/login"
        )
        assert response.status_code == 303 and response.headers["location"].startswith("/spaces?")
        assert client.get("/settings/tokens").status_code == 200
        assert client.submit("/logout", {}).status_code == 303
        assert client.get("/settings/tokens").status_code == 303


def test_signing_up_and_changing_the_password(platform: Platform) -> None:
    name = "p" + secrets.token_hex(4)
    with PageClient(platform.url) as anonymous:
        for bad, message in (
            ({"name": name, "password": "short"}, "at least 8 characters"),
            ({"name": "spaces", "password": "long enough"}, "is reserved"),
            ({"name": "-bad-", "password": "long enough"}, "invalid account name"),
            ({"name": "admin", "password": "long enough"}, "is reserved"),
        ):
            response = anonymous.submit("/join", bad, page="/join")
            assert response.status_code == 400 and message in text_of(response.text), bad

    with signed_up(platform, name) as first, PageClient(platform.url) as second:
        taken = second.submit("/join", {"name": name.upper(), "password": "long enough"}, page="/join")
        assert taken.status_code == 400 and "is taken" in text_of(taken.text)
        assert second.log_in(name, "a long password").status_code == 303
        assert name in text_of(first.get("/settings/tokens").text)

        refused = first.submit("/settings/password", {"current": "wrong", "new": "another password"})
        assert (
            "current password (or token) is wrong" in httpx.URL(refused.headers["location"]).params["error"]
        )
        changed = first.submit(
            "/settings/password", {"current": "a long password", "new": "another password"}
        )
        assert "Password changed" in httpx.URL(changed.headers["location"]).params["notice"]
        assert first.get("/settings/tokens").status_code == 200  # this session goes on
        assert second.get("/settings/tokens").status_code == 303  # the other one ended
        assert second.log_in(name, "a long password").status_code == 400
        assert second.log_in(name, "another password").status_code == 303


def test_sign_up_can_be_turned_off(path_platform: Platform) -> None:
    with PageClient(path_platform.url) as client:
        assert "Sign up" not in text_of(client.get("/spaces").text)
        closed = client.get("/join")
        assert closed.status_code == 403 and "sign-ups are closed" in text_of(closed.text)
        assert client.http.post("/join", data={"name": "x", "password": "long enough"}).status_code == 403


def test_a_token_is_shown_once_works_with_the_hub_client_and_can_be_revoked(platform: Platform) -> None:
    with signed_up(platform) as client:
        page = client.submit("/settings/tokens", {"name": "laptop", "role": "write"}, page="/settings/tokens")
        token = re.search(r'<code id="new-token">([^<]+)</code>', page.text).group(1)
        api = HfApi(endpoint=platform.url, token=token)
        name = api.whoami()["name"]
        listing = client.get("/settings/tokens").text
        assert token not in listing and f"…{token[-4:]}" in listing

        token_id = re.search(r'action="/settings/tokens/(\d+)/revoke"', listing).group(1)
        revoked = client.submit(f"/settings/tokens/{token_id}/revoke", {})
        assert "revoked" in httpx.URL(revoked.headers["location"]).params["notice"]
        with pytest.raises(HfHubHTTPError):
            api.whoami()
        assert name in text_of(client.get(f"/{name}").text)


def test_the_dashboard_is_for_administrators(platform: Platform, admin_pages: PageClient) -> None:
    with PageClient(platform.url) as anonymous:
        assert anonymous.get("/admin").headers["location"] == "/login?next=/admin"
    with signed_up(platform) as user:
        refused = user.get("/admin")
        assert refused.status_code == 403 and "for administrators" in text_of(refused.text)
        assert user.submit("/admin/users", {"name": "sneaky"}).status_code == 403

    dashboard = text_of(admin_pages.get("/admin").text)
    for heading in ("Hosts", "Queues", "Spaces", "Recent builds", "Users and organizations"):
        assert heading in dashboard
    assert f"host-{platform.namespace}" in dashboard and "online" in dashboard


def test_operators_manage_users_organizations_and_tokens(platform: Platform, admin_pages: PageClient) -> None:
    name, org = "op" + secrets.token_hex(3), "org" + secrets.token_hex(3)
    assert (
        "created"
        in admin_pages.submit("/admin/users", {"name": name, "password": "temporary pw"}).headers["location"]
    )
    duplicate = admin_pages.submit("/admin/users", {"name": name})
    assert "is taken" in httpx.URL(duplicate.headers["location"]).params["error"]
    admin_pages.submit("/admin/orgs", {"name": org})
    admin_pages.submit("/admin/members", {"org": org, "user": name})
    assert name in text_of(admin_pages.get(f"/{org}").text)

    page = admin_pages.submit("/admin/tokens", {"user": name, "name": "ci", "role": "write"}, page="/admin")
    token = re.search(r"<pre class=\"copyable\"><code>([^<]+)</code>", page.text).group(1)
    assert HfApi(endpoint=platform.url, token=token).whoami()["name"] == name

    with PageClient(platform.url) as user:
        assert user.log_in(name, "temporary pw").status_code == 303
        admin_pages.submit(f"/admin/users/{name}/disable", {})
        assert user.get("/settings/tokens").status_code == 303  # the session ended
        assert user.log_in(name, "temporary pw").status_code == 400
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=platform.url, token=token).whoami()
    admin_pages.submit(f"/admin/users/{name}/enable", {})
    assert HfApi(endpoint=platform.url, token=token).whoami()["name"] == name

    listing = admin_pages.get("/admin").text
    token_id = re.search(
        rf'<td>{name}</td><td>ci</td>.*?action="/admin/tokens/(\d+)/revoke"', listing, re.S
    ).group(1)
    admin_pages.submit(f"/admin/tokens/{token_id}/revoke", {})
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=platform.url, token=token).whoami()


README = """---
license: mit
---
# Tiny model

<script>alert("owned")</script>

[click](javascript:alert(1)) and [docs](https://example.com/docs)

| a | b |
|---|---|
| 1 | 2 |
"""


def test_models_and_datasets_have_pages_with_a_safe_readme(platform: Platform, make_user) -> None:
    owner = make_user()
    api = HfApi(endpoint=platform.url, token=owner.token)
    model = f"{owner.name}/tiny"
    api.create_repo(model)
    api.upload_file(path_or_fileobj=README.encode(), path_in_repo="README.md", repo_id=model)
    api.upload_file(path_or_fileobj=b'{"hidden": 4}', path_in_repo="conf/config.json", repo_id=model)
    dataset = f"{owner.name}/rows"
    api.create_repo(dataset, repo_type="dataset", private=True)
    api.upload_file(
        path_or_fileobj=b"a,b\n1,2\n", path_in_repo="train.csv", repo_id=dataset, repo_type="dataset"
    )

    with PageClient(platform.url) as anonymous:
        card = anonymous.get(f"/{model}")
        assert card.status_code == 200 and "Tiny model" in text_of(card.text)
        assert "<script>alert" not in card.text and "&lt;script&gt;" in card.text
        assert 'href="javascript:' not in card.text and 'href="https://example.com/docs"' in card.text
        assert "<table>" in card.text
        files = anonymous.get(f"/{model}/tree/main/conf")
        assert "config.json" in text_of(files.text)
        assert '"hidden": 4' in text_of(anonymous.get(f"/{model}/blob/main/conf/config.json").text)
        assert anonymous.get(f"/{model}/blob/main/nothing.txt").status_code == 404
        assert anonymous.get(f"/{model}/tree/nobranch").status_code == 404
        assert anonymous.get(f"/datasets/{dataset}").status_code == 404
        profile = text_of(anonymous.get(f"/{owner.name}").text)
        assert "tiny" in profile and "rows" not in profile

    with PageClient(platform.url) as reader:
        reader.log_in(owner.name, owner.token)
        assert "train.csv" in text_of(reader.get(f"/datasets/{dataset}").text)
        assert "rows" in text_of(reader.get(f"/{owner.name}").text)


def test_only_owners_reach_a_spaces_settings(platform: Platform, make_user) -> None:
    owner = make_user()
    space = platform.create_space("s-" + secrets.token_hex(3), hardware=QUEUED_FLAVOR, token=owner.token)
    with PageClient(platform.url) as anonymous:
        assert anonymous.get(f"/spaces/{space}/settings").headers["location"].startswith("/login?next=")
    with signed_up(platform) as stranger:
        assert stranger.get(f"/spaces/{space}/settings").status_code == 403
        refused = stranger.submit(f"/spaces/{space}/settings/visibility", {"visibility": "private"})
        assert refused.status_code == 403
        assert "Settings" not in text_of(stranger.get(f"/spaces/{space}").text).split("Duplicate")[0]


def test_settings_forms_change_the_space_and_explain_bad_input(platform: Platform, make_user) -> None:
    owner = make_user()
    space = platform.create_space("s-" + secrets.token_hex(3), hardware=QUEUED_FLAVOR, token=owner.token)
    with PageClient(platform.url) as client:
        client.log_in(owner.name, owner.token)

        def act(action: str, **data: str) -> httpx.QueryParams:
            response = client.submit(
                f"/spaces/{space}/settings/{action}", data, page=f"/spaces/{space}/settings"
            )
            assert response.status_code == 303, response.text
            return httpx.URL(response.headers["location"]).params

        assert "unknown hardware" in act("hardware", flavor="h1000-x99")["error"]
        assert "a number of seconds" in act("sleep", seconds="0")["error"]
        assert "not 'soon'" in act("sleep", seconds="soon")["error"]
        assert act("sleep", seconds="3600")["notice"] == "Sleep time saved."
        assert "invalid" in act("secrets", key="1BAD", value="x")["error"].lower()
        act("secrets", key="HF_SECRET", value="do-not-show")
        act("variables", key="MODEL", value="tiny")
        page = client.get(f"/spaces/{space}/settings").text
        assert "HF_SECRET" in page and "do-not-show" not in page and "tiny" in page
        assert "1 hour" in text_of(page)
        assert "exactly" in act("delete", confirm="wrong")["error"]
        assert act("visibility", visibility="private")["notice"] == "The space is now private."
        with PageClient(platform.url) as anonymous:
            assert anonymous.get(f"/spaces/{space}").status_code == 404
        assert client.get(f"/spaces/{space}").status_code == 200
        assert "unknown setting" in act("nonsense")["error"]


def test_an_empty_space_shows_how_to_push(platform: Platform, admin_pages: PageClient) -> None:
    space = platform.create_space("s-" + secrets.token_hex(3), hardware=QUEUED_FLAVOR)
    page = text_of(admin_pages.get(f"/spaces/{space}").text)
    assert "No App File" in page and f"git clone {platform.url}/spaces/{space}" in page
    assert f"hf upload {space} . . --repo-type=space" in page
    with PageClient(platform.url) as anonymous:
        assert "git clone" not in text_of(anonymous.get(f"/spaces/{space}").text)


def test_a_space_page_says_how_to_embed_it_unless_its_owner_disabled_embedding(
    platform: Platform, admin_pages: PageClient
) -> None:
    space = platform.create_space("e-" + secrets.token_hex(3), hardware=QUEUED_FLAVOR)
    platform.push(space, {"README.md": "---\nsdk: gradio\nsdk_version: 5.9.1\n---\n", "app.py": "x"})
    page = text_of(admin_pages.get(f"/spaces/{space}").text)
    app = platform.info(space)["host"]
    assert f'<iframe src="{app}"' in page
    assert "gradio.s3-us-west-2.amazonaws.com/5.9.1/gradio.js" in page and f'<gradio-app src="{app}">' in page

    platform.push(space, {"README.md": "---\nsdk: gradio\ndisable_embedding: true\n---\n"})
    page = text_of(admin_pages.get(f"/spaces/{space}").text)
    assert "<iframe" not in page and "disabled embedding" in page


def test_a_dataset_page_shows_its_rows_a_page_at_a_time(platform: Platform, admin_pages: PageClient) -> None:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    repo = api.create_repo("d-" + secrets.token_hex(3), repo_type="dataset").repo_id
    csv = "word,n\n" + "".join(f"w{i},{i}\n" for i in range(60))
    api.upload_file(path_or_fileobj=csv.encode(), path_in_repo="train.csv", repo_id=repo, repo_type="dataset")
    first = admin_pages.get(f"/datasets/{repo}/viewer")
    assert first.status_code == 200
    text = text_of(first.text)
    assert "Rows 1 to 50 of 60" in text and "w49" in text and "w50" not in text
    assert re.search(r'rel="next" href="\?config=default&amp;split=train&amp;offset=50"', first.text)
    second = text_of(admin_pages.get(f"/datasets/{repo}/viewer", params={"offset": 50}).text)
    assert "Rows 51 to 60 of 60" in second and "w59" in second
    with PageClient(platform.url) as anonymous:
        assert "w0" in text_of(anonymous.get(f"/datasets/{repo}/viewer").text)


def test_a_model_page_shows_its_task_and_the_spaces_that_use_it(platform: Platform) -> None:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    model = api.create_repo("m-" + secrets.token_hex(3)).repo_id
    api.upload_file(
        path_or_fileobj=b"---\npipeline_tag: text-classification\nlibrary_name: transformers\n---\n# M\n",
        path_in_repo="README.md",
        repo_id=model,
    )
    users, hidden = (
        platform.create_space("uses-" + secrets.token_hex(3), hardware=QUEUED_FLAVOR) for _ in "ab"
    )
    front = f"---\ntitle: Classifier demo\nsdk: gradio\nmodels:\n- {model.upper()}\n---\n"
    platform.push(users, {"README.md": front, "app.py": "x"})
    platform.push(hidden, {"README.md": front.replace("Classifier demo", "Secret demo"), "app.py": "x"})
    api.update_repo_settings(hidden, repo_type="space", private=True)
    with PageClient(platform.url) as visitor:
        page = text_of(visitor.get(f"/{model}").text)
    assert "text-classification" in page and "transformers" in page
    assert "Spaces using this model" in page and "Classifier demo" in page and "Secret demo" not in page


def test_pages_and_the_api_answer_errors_in_their_own_language(platform: Platform) -> None:
    with PageClient(platform.url) as client:
        page = client.get("/spaces/nobody/nothing")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "Not found" in text_of(page.text)
    api = httpx.get(
        f"{platform.url}/api/spaces/nobody/nothing", headers={"Accept": "text/html"}, trust_env=False
    )
    assert api.status_code == 404 and api.json()["error"]
    assert httpx.get(f"{platform.url}/static/app.css", trust_env=False).status_code == 200


def test_a_tossed_csrf_cookie_does_not_forge_a_form(platform: Platform) -> None:
    """An app on a sibling subdomain can set the hub's CSRF cookie in a visitor's browser (cookie
    tossing). With its own seed and the token that goes with it, it still cannot post a form for
    the visitor: tokens are bound to the session they were made for."""
    visitor, attacker = signed_up(platform), signed_up(platform)
    tossed_seed = attacker.http.cookies["spacehub-csrf"]
    attacker_token = attacker.csrf("/settings/tokens")
    visitor.http.cookies.set("spacehub-csrf", tossed_seed)
    forged = visitor.http.post("/settings/tokens", data={"csrf": attacker_token, "name": "stolen"})
    assert forged.status_code == 403
    assert "stolen" not in visitor.get("/settings/tokens").text
    # The visitor's own forms, made with whatever seed the browser now holds, still work.
    assert visitor.submit("/settings/tokens", {"name": "mine"}, page="/settings/tokens").status_code == 200
