"""The hub as an OpenID Connect provider (`hf_oauth: true`), driven by Authlib's own OAuth client as
an app would: discovery, consent once per app and scope set, the code exchange, an ID token that
checks against the published keys, and an access token limited to the scopes granted."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.pages import PageClient, text_of
from tests.utils.platform import Platform


def oauth_space(platform: Platform, extra: str = "") -> tuple[str, dict[str, Any]]:
    """A space that signs its visitors in with the hub, and the OAuth credentials its app gets."""
    space = platform.create_space("o" + secrets.token_hex(4), hardware=QUEUED_FLAVOR)
    platform.push(
        space, {"README.md": f"---\nsdk: gradio\nhf_oauth: true\n{extra}---\n", "app.py": "x = 1\n"}
    )
    job = f"rq:queue:{platform.namespace}.{QUEUED_FLAVOR}"
    with httpx.Client(base_url=platform.controller_url, trust_env=False) as internal:
        internal.headers["Authorization"] = f"Bearer internal-{platform.namespace}"
        for job_id in redis.Redis.from_url(platform.redis_url).lrange(job, 0, -1):
            spec = internal.get(f"/api/internal/builds/{job_id.decode().removeprefix('build-')}/spec").json()
            if spec["space_name"] == space:
                return space, spec["oauth"]
    raise AssertionError(f"no queued build of {space}")


def signed_in(platform: Platform, make_user) -> tuple[Any, PageClient]:
    user = make_user()
    pages = PageClient(platform.url)
    assert pages.log_in(user.name, user.token).status_code == 303
    return user, pages


def private_model_of(platform: Platform, user: Any) -> str:
    """A new private model of `user`'s."""
    api = HfApi(endpoint=platform.url, token=user.token)
    return str(api.create_repo(f"{user.name}/notes-{secrets.token_hex(3)}", private=True).repo_id)


def authorize(pages: PageClient, url: str, decision: str | None = "allow") -> httpx.Response:
    """Open an authorization URL in the signed-in browser; on the consent page, answer it."""
    parts = urlsplit(url)
    page = pages.get(f"{parts.path}?{parts.query}")
    if page.status_code != 200 or decision is None:
        return page
    assert "Sign in to" in page.text, text_of(page.text)
    params = dict(parse_qs(parts.query, keep_blank_values=True))
    form = {key: values[0] for key, values in params.items()}
    return pages.submit(
        "/oauth/authorize", {**form, "decision": decision}, page=f"{parts.path}?{parts.query}"
    )


def app_client(platform: Platform, space: str, oauth: dict[str, Any]) -> tuple[OAuth2Client, dict[str, Any]]:
    metadata = httpx.get(f"{platform.url}/.well-known/openid-configuration", trust_env=False).json()
    app = HfApi(endpoint=platform.url, token=platform.admin_token).space_info(space)
    client = OAuth2Client(
        oauth["client_id"],
        oauth["client_secret"],
        scope=oauth["scopes"],
        redirect_uri=f"http://{app.host.removeprefix('http://')}/login/callback?_target_url=%2F",
        trust_env=False,
    )
    return client, metadata


def test_an_app_signs_a_user_in_with_the_scopes_it_declared(platform: Platform, make_user) -> None:
    user, pages = signed_in(platform, make_user)
    private_model = private_model_of(platform, user)
    space, oauth = oauth_space(platform, "hf_oauth_scopes:\n  - read-repos\n  - email\n")
    assert oauth["scopes"] == "openid profile read-repos email"
    client, metadata = app_client(platform, space, oauth)
    assert metadata["issuer"] == platform.url
    assert metadata["authorization_endpoint"] == f"http://localhost:{platform.port}/oauth/authorize"

    nonce = secrets.token_urlsafe(8)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], nonce=nonce)
    consented = authorize(pages, url)
    assert consented.status_code == 302, text_of(consented.text)
    callback = consented.headers["location"]
    assert callback.startswith(client.redirect_uri.split("?")[0]) and f"state={state}" in callback

    token = client.fetch_token(metadata["token_endpoint"], authorization_response=callback)
    assert token["scope"] == "email openid profile read-repos" and token["expires_in"] == 480 * 60
    keys = KeySet.import_key_set(httpx.get(metadata["jwks_uri"], trust_env=False).json())
    claims = jwt.decode(token["id_token"], keys).claims
    assert claims["iss"] == platform.url and claims["aud"] == [oauth["client_id"]]
    assert (claims["nonce"], claims["preferred_username"]) == (nonce, user.name)
    assert {"name", "profile", "picture", "sub"} <= claims.keys()
    with pytest.raises(OAuthError) as reused:
        client.fetch_token(metadata["token_endpoint"], authorization_response=callback)
    assert reused.value.error == "invalid_grant"  # a code works once

    # The token reads what the user may read, private repositories included, and writes nothing.
    api = HfApi(endpoint=platform.url, token=token["access_token"])
    assert api.whoami()["name"] == user.name
    assert api.model_info(private_model).id == private_model
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=private_model)
    assert refused.value.response.status_code == 403
    info = httpx.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
        trust_env=False,
    ).json()
    assert info["preferred_username"] == user.name and "email" not in info  # the user gave none

    # Asked once per app and scope set: the next sign-in goes straight back to the app.
    url, _state = client.create_authorization_url(metadata["authorization_endpoint"], nonce=nonce)
    assert authorize(pages, url, decision=None).status_code == 302


def test_a_token_without_repo_scopes_reads_public_things_only(platform: Platform, make_user) -> None:
    user, pages = signed_in(platform, make_user)
    private_model = private_model_of(platform, user)
    space, oauth = oauth_space(platform)
    assert oauth["scopes"] == "openid profile"
    client, metadata = app_client(platform, space, oauth)
    url, _state = client.create_authorization_url(metadata["authorization_endpoint"], nonce="n")
    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=authorize(pages, url).headers["location"]
    )
    api = HfApi(endpoint=platform.url, token=token["access_token"])
    assert api.whoami()["name"] == user.name
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(private_model)


def test_a_write_repos_token_writes_and_is_no_password(platform: Platform, make_user) -> None:
    user, pages = signed_in(platform, make_user)
    private_model = private_model_of(platform, user)
    space, oauth = oauth_space(platform, "hf_oauth_scopes:\n  - write-repos\n")
    client, metadata = app_client(platform, space, oauth)
    url, _state = client.create_authorization_url(metadata["authorization_endpoint"], nonce="n")
    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=authorize(pages, url).headers["location"]
    )
    api = HfApi(endpoint=platform.url, token=token["access_token"])
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=private_model)
    assert "x.txt" in api.list_repo_files(private_model)
    with PageClient(platform.url) as app:  # the app cannot sign in to the hub's pages as the user
        assert app.log_in(user.name, token["access_token"]).status_code == 400


def test_sign_ins_the_app_may_not_have_are_refused(platform: Platform, make_user) -> None:
    _user, pages = signed_in(platform, make_user)
    space, oauth = oauth_space(platform)
    client, metadata = app_client(platform, space, oauth)

    denied = authorize(pages, client.create_authorization_url(metadata["authorization_endpoint"])[0], "deny")
    assert denied.status_code == 302 and "error=access_denied" in denied.headers["location"]

    # Scopes the README does not declare are not granted, whatever the app asks for.
    greedy = OAuth2Client(
        oauth["client_id"],
        oauth["client_secret"],
        scope="openid profile write-repos",
        redirect_uri=client.redirect_uri,
    )
    url, _state = greedy.create_authorization_url(metadata["authorization_endpoint"])
    consent = pages.get(url.removeprefix(f"http://localhost:{platform.port}"))
    assert "write-repos" not in text_of(consent.text) and "profile" in text_of(consent.text)
    granted = greedy.fetch_token(
        metadata["token_endpoint"], authorization_response=authorize(pages, url).headers["location"]
    )
    assert granted["scope"] == "openid profile"

    elsewhere = OAuth2Client(
        oauth["client_id"], scope=oauth["scopes"], redirect_uri="http://evil.localhost/cb"
    )
    misdirected = authorize(pages, elsewhere.create_authorization_url(metadata["authorization_endpoint"])[0])
    assert misdirected.status_code == 400 and "location" not in misdirected.headers

    stranger = OAuth2Client("space-999999999", scope="openid profile", redirect_uri=client.redirect_uri)
    unknown = authorize(pages, stranger.create_authorization_url(metadata["authorization_endpoint"])[0])
    assert unknown.status_code == 400 and "location" not in unknown.headers

    wrong_secret = OAuth2Client(oauth["client_id"], "not-the-secret", redirect_uri=client.redirect_uri)
    url, _state = client.create_authorization_url(metadata["authorization_endpoint"])
    callback = authorize(pages, url).headers["location"]
    with pytest.raises(OAuthError) as unauthenticated:
        wrong_secret.fetch_token(metadata["token_endpoint"], authorization_response=callback)
    assert unauthenticated.value.error == "invalid_client"

    org = "org" + secrets.token_hex(3)
    with platform.client() as admin:
        admin.post("/api/admin/orgs", json={"name": org}).raise_for_status()
    members_only, members_oauth = oauth_space(platform, f"hf_oauth_authorized_org: {org}\n")
    members_client, _ = app_client(platform, members_only, members_oauth)
    outsider = authorize(
        pages, members_client.create_authorization_url(metadata["authorization_endpoint"])[0]
    )
    assert outsider.status_code == 403 and f"members of {org}" in text_of(outsider.text)


def test_signing_in_starts_from_the_login_page(platform: Platform) -> None:
    space, oauth = oauth_space(platform)
    client, metadata = app_client(platform, space, oauth)
    url, _state = client.create_authorization_url(metadata["authorization_endpoint"])
    with PageClient(platform.url) as anonymous:
        parts = urlsplit(url)
        answer = anonymous.get(f"{parts.path}?{parts.query}")
    assert answer.status_code == 303 and answer.headers["location"].startswith(
        "/login?next=%2Foauth%2Fauthorize"
    )
