"""The edge proxy against a real upstream server: headers, streaming, WebSockets, limits, pages."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import redis
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from websockets.sync.client import connect

from spacehub.proxy.server import STATUS_PATH
from spacehub.state.keys import Keys
from spacehub.state.routes import RouteTable
from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.pages import PageClient, text_of
from tests.utils.platform import Platform
from tests.utils.upstream import Upstream
from tests.utils.waiting import wait_until


def route_to(platform: Platform, redis_client: redis.Redis, space: str, upstream: Upstream) -> str:
    """Point a space at the test upstream, as an agent does once its container is healthy."""
    subdomain = platform.info(space)["subdomain"]
    RouteTable(redis_client, Keys(platform.namespace)).add_route(subdomain, upstream.address, 1, "test-host")
    status = (
        f"http://{subdomain}.localhost:{platform.port}{STATUS_PATH}"
        if platform.routing == "subdomain"
        else f"{platform.url}/app/{space}{STATUS_PATH}"
    )
    admin = {"Authorization": f"Bearer {platform.admin_token}"}  # private spaces answer to it too
    wait_until(
        lambda: httpx.get(status, headers=admin, trust_env=False).json()["ready"],
        timeout=10,
        what="the proxy to learn the route",
    )
    return subdomain


@pytest.fixture
def routed(platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str) -> str:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    subdomain = route_to(platform, redis_client, space, upstream)
    return f"http://{subdomain}.localhost:{platform.port}"


def test_forwarding_headers_are_set_by_the_proxy(routed: str) -> None:
    response = httpx.get(
        f"{routed}/some/path?q=1&q=2",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
            "Forwarded": "for=6.6.6.6",
            "Cookie": "a=b",
        },
        trust_env=False,
    )
    assert response.status_code == 200
    seen = response.json()
    host = routed.removeprefix("http://")
    assert seen["path"] == "/some/path?q=1&q=2"
    assert seen["headers"]["host"] == host
    assert seen["headers"]["x-forwarded-host"] == host
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-forwarded-for"] in ("::1", "127.0.0.1")
    assert "forwarded" not in seen["headers"]
    assert seen["headers"]["cookie"] == "a=b"
    assert response.headers["set-cookie"] == "session=abc; Path=/"
    assert response.headers["x-upstream"] == "yes"


def test_custom_headers_reach_visitors(
    platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str
) -> None:
    """The isolation headers an owner sets in `custom_headers` are on every answer of the app."""
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(
        space,
        {
            "README.md": "---\nsdk: gradio\ncustom_headers:\n"
            "  cross-origin-opener-policy: same-origin\n  cross-origin-embedder-policy: require-corp\n---\n",
            "app.py": "import gradio\n",
        },
    )
    subdomain = route_to(platform, redis_client, space, upstream)
    answer = httpx.get(f"http://{subdomain}.localhost:{platform.port}/x", trust_env=False)
    assert answer.json()["path"] == "/x"
    assert answer.headers["cross-origin-opener-policy"] == "same-origin"
    assert answer.headers["cross-origin-embedder-policy"] == "require-corp"


def test_an_app_whose_owner_disabled_embedding_is_framed_by_the_hub_only(
    platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str
) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, {"README.md": "---\nsdk: gradio\ndisable_embedding: true\n---\n", "app.py": "x"})
    subdomain = route_to(platform, redis_client, space, upstream)
    url = f"http://{subdomain}.localhost:{platform.port}/x"
    policy = httpx.get(url, trust_env=False).headers.get_list("content-security-policy")
    assert policy == [f"frame-ancestors 'self' http://localhost:{platform.port}"]  # the hub's public URL

    platform.push(space, {"README.md": "---\nsdk: gradio\n---\n"})
    wait_until(
        lambda: "content-security-policy" not in httpx.get(url, trust_env=False).headers,
        timeout=10,
        what="the app to be embeddable again",
    )


def test_a_protected_space_opens_its_app_to_all_and_its_repository_to_readers_only(
    platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str
) -> None:
    owner = HfApi(endpoint=platform.url, token=platform.admin_token)
    space = owner.create_repo(
        space_name,
        repo_type="space",
        space_sdk="gradio",
        visibility="protected",
        space_hardware=QUEUED_FLAVOR,
    ).repo_id
    platform.push(space, {"README.md": "---\nsdk: gradio\n---\n", "app.py": "x"})
    assert owner.space_info(space).private is True
    subdomain = route_to(platform, redis_client, space, upstream)
    app = f"http://{subdomain}.localhost:{platform.port}/x"
    assert httpx.get(app, trust_env=False).json()["path"] == "/x"  # no credential needed

    anonymous = HfApi(endpoint=platform.url, token=False)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.space_info(space)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.hf_hub_download(space, "app.py", repo_type="space")
    assert anonymous.get_space_runtime(space).stage is not None  # what the app's page polls
    with PageClient(platform.url) as visitor:
        page = visitor.get(f"/spaces/{space}")
        assert (
            page.status_code == 200
            and "protected" in text_of(page.text)
            and "Files" not in text_of(page.text)
        )
        assert visitor.get(f"/spaces/{space}/tree/main").status_code == 404

    owner.update_repo_settings(space, repo_type="space", visibility="private")
    wait_until(
        lambda: httpx.get(app, trust_env=False, headers={"Accept": "application/json"}).status_code == 404,
        timeout=10,
        what="the app to be private too",
    )
    model = owner.create_repo(f"{space_name}-model").repo_id  # the client refuses this itself; the API too
    with platform.client() as client:
        refused = client.put(f"/api/models/{model}/settings", json={"visibility": "protected"})
    assert refused.status_code == 400 and "only spaces" in refused.text


def test_upstream_connections_are_kept_alive(routed: str) -> None:
    peers = set()
    for _ in range(5):
        with httpx.Client(trust_env=False) as client:  # a new client connection each time
            peers.add(tuple(client.get(f"{routed}/ping").json()["peer"]))
    assert len(peers) == 1, peers


def test_server_sent_events_are_not_buffered(routed: str) -> None:
    """Each event reaches the client before the upstream sends the next one: the upstream sends it
    only once the client asks, so a buffering proxy would time this stream out."""
    events = []
    timeout = httpx.Timeout(10, read=10)
    with httpx.stream("GET", f"{routed}/sse", trust_env=False, timeout=timeout) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(line)
                if len(events) < 3:
                    httpx.post(f"{routed}/sse/next", trust_env=False, timeout=timeout)
    assert events == ["data: 0", "data: 1", "data: 2"]


def test_request_bodies_stream_through(routed: str) -> None:
    size = 50 * 1024 * 1024

    def body():
        chunk = b"x" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            yield chunk

    response = httpx.post(f"{routed}/count", content=body(), trust_env=False, timeout=60)
    assert response.json() == {"received": size}


def test_websockets_keep_their_subprotocol(routed: str) -> None:
    url = routed.replace("http://", "ws://") + "/ws"
    with connect(
        url,
        subprotocols=["streamlit", "PLACEHOLDER_AUTH_TOKEN"],
        additional_headers={"Cookie": "k=v"},
        origin=routed,
    ) as ws:
        assert ws.subprotocol == "streamlit"
        hello = json.loads(ws.recv())
        assert hello["protocol"] == "streamlit"
        assert hello["origin"] == routed and hello["cookie"] == "k=v"
        assert hello["host"] == routed.removeprefix("http://")
        ws.send("ping")
        assert ws.recv() == "echo:ping"
        ws.send(b"\x01\x02\x03")
        assert ws.recv() == b"\x03\x02\x01"


def test_a_space_without_a_running_app_gets_a_page(path_platform: Platform, space_name: str) -> None:
    space = path_platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    path_platform.push(space, {"app.py": "import gradio\n"})
    url = path_platform.info(space)["host"]
    page = httpx.get(url, headers={"Accept": "text/html"}, trust_env=False)
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    assert "This space is building" in page.text and page.headers["retry-after"]
    # An API client is held while the app is on its way (SPACEHUB_WAKE_TIMEOUT), then told why not.
    started = time.monotonic()
    api = httpx.get(url, trust_env=False, timeout=30)
    assert time.monotonic() - started >= 2.5
    assert api.status_code == 503 and api.json()["stage"] == "BUILDING"


def test_a_held_request_outlasts_the_clients_read_timeout(
    platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str
) -> None:
    """An app that takes longer to come up than the client waits for a byte (gradio_client: 5 s):
    the proxy's interim answers keep the client waiting, and the answer is the app's."""
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, {"app.py": "import gradio\n"})
    comes_up = threading.Timer(8, route_to, (platform, redis_client, space, upstream))
    comes_up.start()
    try:
        started = time.monotonic()
        answer = httpx.get(
            f"http://{platform.info(space)['subdomain']}.localhost:{platform.port}/config",
            timeout=httpx.Timeout(30, read=4),
            trust_env=False,
        )
    finally:
        comes_up.join()
    assert time.monotonic() - started >= 7.5
    assert answer.status_code == 200 and answer.json()["path"] == "/config"


def test_unknown_apps_and_internal_paths(platform: Platform) -> None:
    unknown = httpx.get(
        f"http://no-such-space.localhost:{platform.port}/", headers={"Accept": "text/html"}, trust_env=False
    )
    assert unknown.status_code == 404 and "No space here" in unknown.text
    internal = httpx.get(
        f"{platform.url}/api/internal/builds/1/spec",
        headers={"Authorization": "Bearer internal-" + platform.namespace},
        trust_env=False,
    )
    assert internal.status_code == 404


def test_path_routing(
    path_platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str
) -> None:
    space = path_platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    route_to(path_platform, redis_client, space, upstream)
    info = path_platform.info(space)
    assert info["host"] == f"{path_platform.url}/app/{space}/"
    redirect = httpx.get(f"{path_platform.url}/app/{space}", trust_env=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == f"/app/{space}/"
    seen = httpx.get(f"{info['host']}config?x=1", trust_env=False).json()
    assert seen["path"] == "/config?x=1"
    assert seen["headers"]["x-forwarded-prefix"] == f"/app/{space}"
    # Hub paths are still the hub's.
    assert httpx.get(f"{path_platform.url}/api/spaces/{space}", trust_env=False).json()["id"] == space


def test_streamlit_keeps_its_path_prefix(
    path_platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str
) -> None:
    space = path_platform.create_space(space_name, sdk="streamlit", hardware=QUEUED_FLAVOR)
    route_to(path_platform, redis_client, space, upstream)
    seen = httpx.get(f"{path_platform.url}/app/{space}/_stcore/health", trust_env=False).json()
    assert seen["path"] == f"/app/{space}/_stcore/health"


def test_body_limit(
    path_platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str
) -> None:
    space = path_platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    route_to(path_platform, redis_client, space, upstream)
    url = f"{path_platform.url}/app/{space}/count"
    assert httpx.post(url, content=b"x" * (9 * 1024 * 1024), trust_env=False).json() == {
        "received": 9 * 1024 * 1024
    }
    declared = httpx.post(url, content=b"x" * (11 * 1024 * 1024), trust_env=False)
    assert declared.status_code == 413

    def chunked():
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    streamed = httpx.post(url, content=chunked(), trust_env=False)
    assert streamed.status_code == 413


def test_private_apps_open_only_with_credentials(
    platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str, make_user
) -> None:
    owner, stranger = make_user(), make_user()
    space = platform.create_space(space_name, private=True, hardware=QUEUED_FLAVOR, token=owner.token)
    subdomain = route_to(platform, redis_client, space, upstream)
    url = f"http://{subdomain}.localhost:{platform.port}/x"

    def get(**kwargs) -> httpx.Response:
        return httpx.get(url, trust_env=False, **kwargs)

    assert get().status_code == 404
    assert get(headers={"Authorization": f"Bearer {stranger.token}"}).status_code == 404
    assert get(headers={"Authorization": "Bearer shub_garbage"}).status_code == 404

    seen = get(headers={"Authorization": f"Bearer {owner.read_token}"}).json()
    assert "authorization" not in seen["headers"]
    seen = get(headers={"X-HF-Authorization": f"Bearer {owner.token}"}).json()
    assert "x-hf-authorization" not in seen["headers"]

    with platform.client(owner.token) as client:
        signed = client.get(f"/api/spaces/{space}/jwt").json()["token"]
    with platform.client(stranger.token) as client:
        assert client.get(f"/api/spaces/{space}/jwt").status_code == 404
    opened = httpx.get(f"{url}?__sign={signed}&a=1", trust_env=False)
    assert opened.status_code == 200 and opened.json()["path"] == "/x?a=1"
    set_cookie = next(c for c in opened.headers.get_list("set-cookie") if c.startswith("spacehub-access="))
    cookie = set_cookie.split(";")[0].removeprefix("spacehub-access=")
    assert cookie == signed and "HttpOnly" in set_cookie
    # The hub (127.0.0.1) shows the app (*.localhost) in an iframe from another site.
    assert "SameSite=None; Secure; Partitioned" in set_cookie
    again = get(headers={"Cookie": f"theme=dark; spacehub-access={cookie}"}).json()
    assert again["headers"]["cookie"] == "theme=dark"

    other = platform.create_space(
        space_name + "-other", private=True, hardware=QUEUED_FLAVOR, token=owner.token
    )
    with platform.client(owner.token) as client:
        other_token = client.get(f"/api/spaces/{other}/jwt").json()["token"]
    assert httpx.get(f"{url}?__sign={other_token}", trust_env=False).status_code == 404
    assert httpx.get(f"{url}?__sign={signed[:-2]}xx", trust_env=False).status_code == 404


def test_credentials_never_reach_public_apps(routed: str, platform: Platform) -> None:
    seen = httpx.get(
        f"{routed}/y",
        trust_env=False,
        headers={
            "Authorization": f"Bearer {platform.admin_token}",
            "X-HF-Authorization": f"Bearer {platform.admin_token}",
        },
    ).json()
    assert "authorization" not in seen["headers"] and "x-hf-authorization" not in seen["headers"]


def test_app_links_are_short_lived_and_end_with_their_users_session(
    platform: Platform, redis_client: redis.Redis, upstream: Upstream, space_name: str, make_user
) -> None:
    owner = make_user()
    space = platform.create_space(space_name, private=True, hardware=QUEUED_FLAVOR, token=owner.token)
    url = f"http://{route_to(platform, redis_client, space, upstream)}.localhost:{platform.port}/x"
    with platform.client(owner.token) as client:
        assert client.get(f"/api/spaces/{space}/jwt", params={"expires_in": 86400}).status_code == 400
        link = client.get(f"/api/spaces/{space}/jwt").json()
    assert link["exp"] - time.time() <= 3600
    assert httpx.get(url, params={"__sign": link["token"]}, trust_env=False).status_code == 200

    with platform.client() as admin:
        assert admin.post(f"/api/admin/users/{owner.name}/disable").is_success
    wait_until(
        lambda: httpx.get(url, params={"__sign": link["token"]}, trust_env=False).status_code == 404,
        timeout=30,
        what="the link to stop working once its user's sessions ended",
    )
