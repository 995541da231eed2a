"""Signing out ends the session for good: the session cookie (a signed value, which a copy would
otherwise keep alive) and the app links issued while signed in stop working."""

from __future__ import annotations

import httpx
import redis

from tests.integration.conftest import QUEUED_FLAVOR
from tests.integration.test_proxy import route_to
from tests.utils.pages import PageClient
from tests.utils.platform import Platform
from tests.utils.upstream import Upstream
from tests.utils.waiting import wait_until


def test_signing_out_ends_the_session_and_its_app_links(
    platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str, make_user
) -> None:
    owner = make_user()
    space = platform.create_space(space_name, private=True, hardware=QUEUED_FLAVOR, token=owner.token)
    url = f"http://{route_to(platform, redis_client, space, upstream)}.localhost:{platform.port}/x"
    with PageClient(platform.url) as pages:
        assert pages.log_in(owner.name, owner.token).status_code == 303
        session = pages.http.cookies.get("spacehub-session")
        link = pages.http.get(f"/api/spaces/{space}/jwt").json()["token"]  # as the space page gets it
        assert httpx.get(url, params={"__sign": link}, trust_env=False).status_code == 200
        assert pages.submit("/logout", {}).status_code == 303
    copied = httpx.get(
        f"{platform.url}/api/spaces/{space}/jwt", cookies={"spacehub-session": session}, trust_env=False
    )
    assert copied.status_code == 404  # a private space, to someone not signed in
    wait_until(
        lambda: httpx.get(url, params={"__sign": link}, trust_env=False).status_code == 404,
        timeout=30,
        what="the app link to stop working once its session ended",
    )
