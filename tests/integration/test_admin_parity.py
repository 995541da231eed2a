"""The admin API and the dashboard are two doors to one service: what one does, the other does
the same way (a disabled user is signed out everywhere; a member gets the role the form names)."""

from __future__ import annotations

import secrets

from huggingface_hub import HfApi

from tests.utils.pages import PageClient
from tests.utils.platform import Platform


def test_disabling_a_user_through_the_api_ends_their_browser_sessions(platform: Platform, make_user) -> None:
    user = make_user()
    with PageClient(platform.url) as pages:
        assert pages.log_in(user.name, user.token).status_code == 303
        assert pages.get("/settings/tokens").status_code == 200
        with platform.client() as admin:
            assert admin.post(f"/api/admin/users/{user.name}/disable").is_success
        assert pages.get("/settings/tokens").status_code == 303  # back to the login page
        with platform.client() as admin:
            assert admin.post(f"/api/admin/users/{user.name}/enable").is_success
        assert pages.get("/settings/tokens").status_code == 303  # ended, not merely suspended


def test_the_dashboard_gives_a_member_the_role_it_names(platform: Platform, make_user) -> None:
    user, org = make_user(), "org" + secrets.token_hex(3)
    with PageClient(platform.url) as admin_pages:
        assert admin_pages.log_in("admin", platform.admin_token).status_code == 303
        admin_pages.submit("/admin/orgs", {"name": org}, page="/admin")
        for role in ("read", "admin"):
            answer = admin_pages.submit(
                "/admin/members", {"org": org, "user": user.name, "role": role}, page="/admin"
            )
            assert answer.status_code == 303
            orgs = HfApi(endpoint=platform.url, token=user.token).whoami()["orgs"]
            assert [(o["name"], o["roleInOrg"]) for o in orgs] == [(org, role)]
