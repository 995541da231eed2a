"""The cookie a private app's signed link turns into, on each kind of deployment."""

from __future__ import annotations

import pytest

from spacehub.config import Settings
from spacehub.proxy.auth import AppAccess
from spacehub.proxy.controllers import Controllers
from spacehub.signing import derive_key, sign


@pytest.mark.parametrize(
    ("public_url", "host", "expected"),
    [
        ("https://hub.example.com", "alice-demo.hub.example.com", "SameSite=None; Secure; Partitioned"),
        ("http://localhost:8080", "alice-demo.localhost:8080", "SameSite=None; Secure; Partitioned"),
        ("http://hub.lan:8080", "alice-demo.hub.lan:8080", "SameSite=Lax"),
    ],
)
def test_the_access_cookie_works_inside_the_hubs_iframe(public_url: str, host: str, expected: str) -> None:
    settings = Settings(public_url=public_url, internal_token="internal-test")
    token, _ = sign({"space": 1}, derive_key("internal-test"), 600)
    cookie = AppAccess(settings, Controllers(["http://controller"]))._cookie(token, "", host)
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0] == f"spacehub-access={token}"
    assert "HttpOnly" in attributes and "Path=/" in attributes
    assert "; ".join(attributes).endswith(expected)
    max_age = int(next(a for a in attributes if a.startswith("Max-Age=")).split("=")[1])
    assert 590 <= max_age <= 600
