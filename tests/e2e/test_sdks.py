"""Streamlit in a real browser, a Dockerfile app on its own port, and a static site."""

from __future__ import annotations

import json
import time

import httpx

from tests.e2e.apps import DOCKER_FILES, STATIC_FILES, STREAMLIT_FILES
from tests.utils.browser import open_page
from tests.utils.platform import Platform


def test_streamlit_works_in_chromium_through_the_proxy(
    platform: Platform, space_name: str, browser, artifacts
) -> None:
    space = platform.create_space(space_name, sdk="streamlit")
    platform.push(space, STREAMLIT_FILES)
    platform.wait_stage(space, "RUNNING")
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    open_page(page, platform.app_url(space))
    page.get_by_text("E2E Streamlit").wait_for(timeout=60_000)
    page.get_by_text("Clicks: 0").wait_for()
    page.get_by_role("button", name="Add one").click()
    page.get_by_text("Clicks: 1").wait_for(timeout=15_000)
    page.get_by_role("button", name="Add one").click()
    page.get_by_text("Clicks: 2").wait_for(timeout=15_000)
    name = page.get_by_label("Name")
    name.fill("Ada")
    name.press("Enter")
    page.get_by_text("Echo: Ada").wait_for(timeout=15_000)
    page.screenshot(path=str(artifacts / "streamlit.png"))
    assert not [e for e in errors if "WebSocket" in e], errors
    page.close()


def test_a_dockerfile_app_on_its_own_port(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, sdk="docker")
    platform.push(space, DOCKER_FILES)
    platform.wait_stage(space, "RUNNING")
    answer = httpx.get(platform.app_url(space) + "/hello?x=1", trust_env=False).json()
    assert answer == {"path": "/hello?x=1", "uid": 1000, "greeting": "hello", "space": space}


def test_a_static_site_is_served_without_a_container(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name, sdk="static")
    platform.push(space, STATIC_FILES)
    runtime = platform.runtime(space)
    assert runtime["stage"] == "RUNNING"
    url = platform.app_url(space)
    index = httpx.get(url + "/", trust_env=False)
    assert index.status_code == 200 and "Hello static" in index.text
    assert index.headers["content-type"].startswith("text/html")
    script = httpx.get(url + "/js/app.js", trust_env=False)
    assert script.headers["content-type"] in ("text/javascript; charset=utf-8", "application/javascript")
    assert httpx.get(url + "/docs/", trust_env=False).text == "<p>docs</p>"
    assert httpx.get(url + "/missing.png", trust_env=False).status_code == 404
    assert httpx.post(url + "/", trust_env=False).status_code == 405
    assert not [
        c for c in platform.containers() if c.labels.get("spacehub.space") == str(platform.info(space)["_id"])
    ]


SECRET_DOCKERFILE = """FROM python:3.11-slim
ARG GREETING
RUN --mount=type=secret,id=BUILD_TOKEN,mode=0444,required=true \\
    sha256sum /run/secrets/BUILD_TOKEN | cut -d" " -f1 > /token-hash && echo "$GREETING" > /greeting
RUN useradd -m -u 1000 user
USER user
COPY --chown=user server.py /home/user/server.py
CMD ["python", "/home/user/server.py"]
"""

SECRET_SERVER = """
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"greeting": open("/greeting").read().strip(),
                           "token_hash": open("/token-hash").read().strip(),
                           "runtime_token_set": bool(os.environ.get("BUILD_TOKEN"))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", 7860), Handler).serve_forever()
"""


def test_docker_spaces_get_variables_as_build_args_and_secrets_as_mounts(
    platform: Platform, space_name: str
) -> None:
    import hashlib

    import docker
    from huggingface_hub import HfApi

    secret = "build-secret-" + space_name
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    space = platform.create_space(space_name, sdk="docker")
    api.add_space_variable(space, "GREETING", "bonjour")
    api.add_space_secret(space, "BUILD_TOKEN", secret)
    platform.push(
        space,
        {"README.md": "---\nsdk: docker\n---\n", "Dockerfile": SECRET_DOCKERFILE, "server.py": SECRET_SERVER},
    )
    platform.wait_stage(space, "RUNNING")
    answer = httpx.get(platform.app_url(space) + "/", trust_env=False).json()
    assert answer == {
        "greeting": "bonjour",
        "token_hash": hashlib.sha256(secret.encode()).hexdigest(),
        "runtime_token_set": True,
    }
    image = next(
        c
        for c in platform.containers(all=False)
        if c.labels["spacehub.subdomain"] == platform.info(space)["subdomain"]
    ).image
    client = docker.from_env()
    history = json.dumps(client.api.history(image.id)) + json.dumps(client.api.inspect_image(image.id))
    assert secret not in history
    assert secret not in platform.logs(space, "build")

    # BuildKit keeps secret mounts out of its cache keys; the platform keys every step by them, so
    # a new value reaches the steps that read it (and no other space reuses what a secret made).
    rotated = secret + "-rotated"
    api.add_space_secret(space, "BUILD_TOKEN", rotated)
    deadline = time.monotonic() + 300
    while (
        httpx.get(platform.app_url(space) + "/", trust_env=False).json()["token_hash"]
        != hashlib.sha256(rotated.encode()).hexdigest()
    ):
        assert time.monotonic() < deadline, platform.runtime(space)
        time.sleep(1)
