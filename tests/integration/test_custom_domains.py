"""Custom domains: the edge serves a space's app at its owner's domain too; the API says the domain
is pending until it resolves to the hub, and refuses domains that are the hub's or another space's.
(`*.localhost` names resolve to this machine, as the hub's `localhost` does.)"""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.utils.pages import PageClient, text_of
from tests.utils.platform import Platform

INDEX = "<!doctype html><title>custom</title><p>Hello from my own domain</p>"


def through_edge(platform: Platform, host: str, path: str = "/") -> httpx.Response:
    return httpx.get(f"{platform.url}{path}", headers={"Host": host}, trust_env=False)


@pytest.fixture
def static_space(platform: Platform) -> str:
    space = platform.create_space("d" + secrets.token_hex(4), sdk="static")
    platform.push(space, {"README.md": "---\nsdk: static\n---\n", "index.html": INDEX})
    platform.wait_stage(space, "RUNNING", timeout=60)
    return space


def test_the_edge_serves_an_app_at_its_custom_domain(platform: Platform, static_space: str) -> None:
    domain = f"www.{static_space.split('/')[1]}.localhost"
    with platform.client() as client:
        put = client.put(f"/api/spaces/{static_space}/custom-domain", json={"domain": domain.upper()})
        assert put.status_code == 200, put.text
        assert put.json() == {"domain": domain, "stage": "READY", "message": f"{domain} resolves to the hub"}
        assert client.get(f"/api/spaces/{static_space}/custom-domain").json()["stage"] == "READY"
        served = through_edge(platform, f"{domain}:{platform.port}")
        assert served.status_code == 200 and "Hello from my own domain" in served.text

        other = platform.create_space("d" + secrets.token_hex(4), sdk="static")
        taken = client.put(f"/api/spaces/{other}/custom-domain", json={"domain": domain})
        assert taken.status_code == 409 and "another space" in taken.json()["error"]
        pending = client.put(f"/api/spaces/{other}/custom-domain", json={"domain": "demo.example.invalid"})
        assert pending.json()["stage"] == "PENDING" and "does not resolve" in pending.json()["message"]

        assert client.delete(f"/api/spaces/{static_space}/custom-domain").status_code == 204
        assert client.get(f"/api/spaces/{static_space}/custom-domain").json()["domain"] is None
    assert "Hello from my own domain" not in through_edge(platform, domain).text


@pytest.mark.parametrize(
    ("domain", "why"),
    [
        ("x.localhost", "the hub's own"),  # a name in the apps' domain: some space's subdomain
        ("localhost", "not a domain name"),
        ("bad_name.example.com", "not a domain name"),
        ("-lead.example.com", "not a domain name"),
        ("a" * 64 + ".example.com", "not a domain name"),
    ],
)
def test_domains_a_space_cannot_have_are_refused(
    platform: Platform, static_space: str, domain: str, why: str
) -> None:
    with platform.client() as client:
        answer = client.put(f"/api/spaces/{static_space}/custom-domain", json={"domain": domain})
    assert answer.status_code == 400 and why in answer.json()["error"]


def test_a_private_space_gets_no_custom_domain(platform: Platform) -> None:
    space = platform.create_space("d" + secrets.token_hex(4), sdk="static", private=True)
    with platform.client() as client:
        answer = client.put(f"/api/spaces/{space}/custom-domain", json={"domain": "private.example.com"})
    assert answer.status_code == 400 and "public" in answer.json()["error"]


def test_the_settings_page_sets_and_shows_the_domain(platform: Platform, static_space: str) -> None:
    domain = f"pages.{static_space.split('/')[1]}.localhost"
    settings = f"/spaces/{static_space}/settings"
    with PageClient(platform.url) as pages:
        assert pages.log_in("admin", platform.admin_token).status_code == 303
        saved = pages.submit(f"{settings}/domain", {"domain": domain}, page=settings)
        assert saved.status_code == 303 and "error" not in saved.headers["location"]
        shown = text_of(pages.get(settings).text)
        assert f"ready {domain} resolves to the hub" in shown
        refused = pages.submit(f"{settings}/domain", {"domain": "x.localhost"}, page=settings)
        assert "error=" in refused.headers["location"]
        assert pages.submit(f"{settings}/domain", {"domain": ""}, page=settings).status_code == 303
        assert "resolves to the hub" not in text_of(pages.get(settings).text)
