"""Tiny, hostile or unlucky input on every boundary: each gets a clear 4xx that says what to fix,
never a 5xx, a dropped connection, a hang or an oversized answer."""

from __future__ import annotations

import base64
import json
import socket

import httpx
import pytest
import redis

from spacehub.spec.frontmatter import MAX_FRONT_MATTER, MAX_VALUES
from tests.integration.conftest import QUEUED_FLAVOR
from tests.utils.pages import PageClient
from tests.utils.platform import Platform

# 9 levels of 9 aliases each: 387 bytes that a YAML parser would expand to 9^9 strings.
YAML_BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
ALIAS_REFUSAL = (
    f"README.md line 2: YAML aliases (*name) expand the front matter to more than {MAX_VALUES:,} values: "
    "write the values out instead"
)


def raw_request(platform: Platform, request: bytes) -> bytes:
    """Send bytes as they are to the edge and read its answer."""
    with socket.create_connection(("127.0.0.1", platform.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("value", ["a%0Ab", "a%00b", "a%7Fb", "a%1Bb", "%E2%80%A8x"])
def test_control_characters_in_paths_get_a_clean_answer(platform: Platform, value: str) -> None:
    answer = httpx.get(f"{platform.url}/api/spaces/{value}/x/runtime", trust_env=False)
    assert answer.status_code == 404, answer.text
    message = answer.headers["x-error-message"]
    assert message.isprintable() and "not found" in message


def test_a_yaml_bomb_is_refused_before_anything_is_stored(platform: Platform, space_name: str) -> None:
    answer = httpx.post(
        f"{platform.url}/api/validate-yaml",
        json={"content": f"---\n{YAML_BOMB}---\n", "repoType": "space"},
        trust_env=False,
        timeout=30,
    )
    assert answer.status_code == 400 and len(answer.content) < 2000, answer.text
    # Refused by counting the aliases' expansion (nothing is expanded), not by a parser that gave up.
    (error,) = answer.json()["errors"]
    assert error["message"] == ALIAS_REFUSAL

    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(space, {"README.md": f"---\nsdk: gradio\n{YAML_BOMB}---\n", "app.py": "import gradio\n"})
    runtime = platform.wait_stage(space, "CONFIG_ERROR", timeout=30)
    assert runtime["errorMessage"] == ALIAS_REFUSAL
    info = httpx.get(f"{platform.url}/api/spaces/{space}", trust_env=False)
    assert len(info.content) < 20_000 and "lol" not in info.text


def test_a_huge_front_matter_is_refused_before_it_is_parsed(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    filler = "".join(f"key{i}: {'x' * 100}\n" for i in range(20_000))  # 2 MB
    platform.push(space, {"README.md": f"---\nsdk: gradio\n{filler}---\n", "app.py": "import gradio\n"})
    runtime = platform.wait_stage(space, "CONFIG_ERROR", timeout=30)
    assert runtime["errorMessage"] == (
        f"README.md line 2: the front matter is larger than {MAX_FRONT_MATTER // 1024} KiB: "
        "keep long texts in the body"
    )
    # None of the 2 MB comes back in the space's answers.
    assert len(json.dumps(runtime)) < 2000, runtime
    info = httpx.get(f"{platform.url}/api/spaces/{space}", trust_env=False)
    assert info.status_code == 200 and len(info.content) < 20_000 and "key19999" not in info.text


def test_a_huge_readme_is_not_rendered_inline(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    platform.push(
        space, {"README.md": "---\nsdk: gradio\n---\n" + "# big\n" * 2_000_000, "app.py": "x = 1\n"}
    )
    page = httpx.get(
        f"{platform.url}/spaces/{space}/tree/main", headers={"Accept": "text/html"}, trust_env=False
    )
    assert page.status_code == 200 and len(page.content) < 200_000
    assert "too large to show" in page.text


@pytest.mark.parametrize("secret", ["tökén", "ü" * 40, "shub_\u2603", "\u00ff"])
def test_non_ascii_credentials_are_just_wrong_credentials(
    platform: Platform, space_name: str, secret: str
) -> None:
    raw = secret.encode()
    bearer = {"Authorization": b"Bearer " + raw}
    api = httpx.get(f"{platform.url}/api/whoami-v2", headers=bearer, trust_env=False)
    assert api.status_code == 401
    basic = base64.b64encode(b"user:" + raw)
    git_answer = httpx.get(
        f"{platform.url}/spaces/admin/x/info/refs",
        params={"service": "git-receive-pack"},
        headers={"Authorization": b"Basic " + basic},
        trust_env=False,
    )
    assert git_answer.status_code == 401

    private = platform.create_space(space_name, private=True, hardware=QUEUED_FLAVOR)
    app = f"http://{platform.info(private)['subdomain']}.localhost:{platform.port}/"
    unknown = f"http://no-such-{space_name}.localhost:{platform.port}/"
    for headers in (bearer, {"X-HF-Authorization": b"Bearer " + raw}, {"Cookie": b"spacehub-access=" + raw}):
        assert httpx.get(app, headers=headers, trust_env=False).status_code == 404
        assert httpx.get(unknown, headers=headers, trust_env=False).status_code == 404
    signed = httpx.get(app, params={"__sign": secret}, trust_env=False)
    assert signed.status_code == 404

    with PageClient(platform.url) as pages:
        session = {"Cookie": b"spacehub-session=" + raw + b"; spacehub-csrf=" + raw}
        assert pages.get("/spaces", headers=session).status_code == 200  # an unknown session is no session
        forged = pages.http.post(
            "/login", data={"csrf": secret, "name": "admin", "password": secret}, headers=session
        )
        assert forged.status_code == 403


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x.localhost:abc\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
        (b"TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
    ],
)
def test_odd_request_lines_and_hosts_get_4xx(platform: Platform, request_bytes: bytes, status: int) -> None:
    answer = raw_request(platform, request_bytes)
    assert status_of(answer) == status, answer[:300]
    if status == 405:
        assert b"\r\nallow: " in answer.lower()


def test_absolute_form_requests_are_routed_by_their_authority(platform: Platform) -> None:
    answer = raw_request(
        platform,
        f"GET http://localhost:{platform.port}/healthz HTTP/1.1\r\n"
        f"Host: localhost:{platform.port}\r\n\r\n".encode(),
    )
    assert status_of(answer) == 200


def test_a_path_inside_dot_git_is_refused_whatever_its_case(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    for path in (".GIT/config", "docs/.Git/hooks/x", ".git./config"):
        operation = {"path": path, "content": "eA==", "encoding": "base64"}
        payload = "\n".join(
            json.dumps(line)
            for line in (
                {"key": "header", "value": {"summary": "sneaky"}},
                {"key": "file", "value": operation},
            )
        )
        answer = httpx.post(
            f"{platform.url}/api/spaces/{space}/commit/main",
            content=payload,
            headers={
                "Authorization": f"Bearer {platform.admin_token}",
                "Content-Type": "application/x-ndjson",
            },
            trust_env=False,
        )
        assert answer.status_code == 400, (path, answer.text)
        assert ".git" in answer.json()["error"].lower()


def test_login_attempts_are_limited(platform: Platform, make_user) -> None:
    user = make_user()
    with PageClient(platform.url) as pages:
        answers = [pages.log_in(user.name, f"wrong{i}").status_code for i in range(12)]
        assert answers[0] == 400 and answers[-1] == 429, answers
        # Even the right secret waits until the window passes: a guesser learns nothing.
        assert pages.log_in(user.name, user.token).status_code == 429


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/api/validate-yaml", "POST"), ("GET", "/api/admin/tokens/1", "DELETE")],
)
def test_a_known_path_with_the_wrong_method_is_405(
    platform: Platform, method: str, path: str, allowed: str
) -> None:
    answer = httpx.request(
        method,
        platform.url + path,
        headers={"Authorization": f"Bearer {platform.admin_token}"},
        trust_env=False,
    )
    assert answer.status_code == 405, answer.text
    assert allowed in answer.headers["allow"]


def test_the_schema_documents_the_errors_the_api_answers(platform: Platform) -> None:
    schema = httpx.get(f"{platform.url}/api/openapi.json", trust_env=False).json()
    responses = {
        (path, method): operation["responses"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert not [key for key, answers in responses.items() if "422" in answers]
    runtime = responses[("/api/spaces/{owner}/{name}/runtime", "get")]
    assert {"400", "401", "404"} <= set(runtime)
    create = responses[("/api/repos/create", "post")]
    assert {"400", "401", "403", "409"} <= set(create)


def test_space_secrets_are_encrypted_at_rest(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, hardware=QUEUED_FLAVOR)
    value = "s3cr3t-" + space_name
    with platform.client() as client:
        assert client.post(f"/api/spaces/{space}/secrets", json={"key": "API_KEY", "value": value}).is_success
    platform.push(space, {"README.md": "---\nsdk: gradio\n---\n", "app.py": "x = 1\n"})
    files = platform.database_files()
    assert files and not [f.name for f in files if value.encode() in f.read_bytes()]
    assert value not in (platform.data_dir / "secrets-key").read_text()
    # What an agent gets to run the app holds the value itself.
    build = platform.runtime(space)
    assert build["stage"] == "BUILDING"
    with httpx.Client(base_url=platform.controller_url, trust_env=False) as internal:
        internal.headers["Authorization"] = f"Bearer internal-{platform.namespace}"
        job_ids = [
            k.decode()
            for k in redis.Redis.from_url(platform.redis_url).lrange(
                f"rq:queue:{platform.namespace}.{QUEUED_FLAVOR}", 0, -1
            )
        ]
        specs = [
            internal.get(f"/api/internal/builds/{j.removeprefix('build-')}/spec").json() for j in job_ids
        ]
    assert {"API_KEY": value} in [s.get("secrets") for s in specs]
