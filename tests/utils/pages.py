"""A browser without JavaScript, for the hub's pages: cookies, forms with their CSRF token, and the
text a reader would see."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
_TAG = re.compile(r"<[^>]+>")


class PageClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Accept": "text/html"}, timeout=30, trust_env=False
        )

    def __enter__(self) -> PageClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def csrf(self, page: str = "/spaces") -> str:
        match = _CSRF.search(self.get(page).text)
        assert match and match.group(1), f"no CSRF token on {page}"
        return match.group(1)

    def submit(self, path: str, data: dict[str, Any], *, page: str = "/spaces") -> httpx.Response:
        """Post a form as the browser would, with the token of `page`; redirects are not followed."""
        return self.http.post(path, data={"csrf": self.csrf(page), **data})

    def log_in(self, name: str, secret: str) -> httpx.Response:
        return self.submit("/login", {"name": name, "password": secret}, page="/login")


def text_of(markup: str) -> str:
    """The visible text of a page, whitespace collapsed."""
    body = re.sub(r"<(head|script|style)\b.*?</\1>", " ", markup, flags=re.S)
    return " ".join(html.unescape(_TAG.sub(" ", body)).split())
