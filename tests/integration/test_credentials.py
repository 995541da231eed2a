"""Non-ASCII secrets on the credential paths that need a valid form or client first: a password at
sign-in (past the CSRF check) and an OAuth client's secret at the token endpoint are wrong
credentials like any other (never a 500)."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.integration.test_oauth import oauth_space
from tests.utils.pages import PageClient
from tests.utils.platform import Platform


@pytest.mark.parametrize("secret", ["tökén", "\u00ff" * 40, "shub_\u2603"])
def test_non_ascii_passwords_and_client_secrets_are_wrong_credentials(
    platform: Platform, make_user, secret: str
) -> None:
    user = make_user()
    with PageClient(platform.url) as pages:
        answer = pages.log_in(user.name, secret)
        assert answer.status_code == 400 and "Wrong user name or password" in answer.text
        assert pages.log_in(user.name, user.token).status_code == 303  # the form itself was sound
    client_id = oauth_space(platform)[1]["client_id"]  # a real client, so that its secret is compared
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    token = httpx.post(
        f"{platform.url}/oauth/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": "http://localhost/"},
        headers={"Authorization": f"Basic {basic}"},
        trust_env=False,
    )
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"
