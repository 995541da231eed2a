"""Gradio's own "Sign in with Hugging Face" (gr.LoginButton, gr.OAuthProfile, gr.OAuthToken),
unmodified, signs a hub user in through Chromium: the app sends the browser to the hub, the user
consents once, and the app gets the user's profile and a token that works against the hub with the
scopes its README declared, top-level and from the space page's frame."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.utils.browser import open_page
from tests.utils.platform import Platform

README = """---
title: Sign in
sdk: gradio
hf_oauth: true
hf_oauth_scopes:
  - read-repos
---
"""
APP = """
import gradio as gr
from huggingface_hub import HfApi


def hello(profile: gr.OAuthProfile | None, token: gr.OAuthToken | None) -> str:
    if profile is None or token is None:
        return "signed out"
    me = HfApi(token=token.token).whoami()  # HF_ENDPOINT: the hub, as apps reach it
    return f"hello {profile.username}; the token is {me['name']}'s"


with gr.Blocks() as demo:
    gr.LoginButton()
    greeting = gr.Markdown()
    demo.load(hello, None, greeting)

demo.launch()
"""


def test_gradio_login_button_signs_a_hub_user_in(
    platform: Platform, space_name: str, make_user, browser: Browser, artifacts
) -> None:
    user = make_user()
    space = platform.create_space(space_name)
    platform.push(space, {"README.md": README, "app.py": APP})
    platform.wait_stage(space, "RUNNING")

    context = browser.new_context()
    page = context.new_page()
    open_page(page, f"http://localhost:{platform.port}/login")
    page.get_by_label("User name").fill(user.name)
    page.get_by_label("Password").fill(user.token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/spaces**")

    open_page(page, platform.app_url(space))
    page.get_by_text("signed out").wait_for(timeout=60_000)
    page.get_by_role("button", name="Sign in with Hugging Face").click()
    page.get_by_role("button", name="Allow").wait_for(timeout=30_000)
    assert "read-repos" in page.content()
    page.screenshot(path=str(artifacts / "oauth-consent.png"))
    page.get_by_role("button", name="Allow").click()
    page.get_by_text(f"hello {user.name}; the token is {user.name}'s").wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "oauth-signed-in.png"))

    # In the space page's frame the app's cookies are third-party ones, which this browser context
    # (like Safari, Firefox and incognito windows) does not send: the app shows signed out. Its
    # button there continues the sign-in in the whole tab (the hub never asks for consent inside a
    # frame), consent is remembered, and the tab ends on the app, signed in.
    open_page(page, f"http://localhost:{platform.port}/spaces/{space}")
    frame = page.frame_locator("iframe.app-frame")
    frame.get_by_text("signed out").wait_for(timeout=60_000)
    frame.get_by_role("button", name="Sign in with Hugging Face").click()
    frame.get_by_role("link", name="Continue to sign in").click()
    page.get_by_text(f"hello {user.name}").wait_for(timeout=60_000)
    assert page.url.startswith(platform.app_url(space))
    context.close()
