"""Access to private apps at the edge proxy, and keeping credentials away from every app.

A private app opens for a request carrying, in order of preference:
- `__sign=<token>` (from `GET /api/spaces/{id}/jwt`, what the hub page and @gradio/client use),
  which the proxy verifies itself and turns into a cookie on the app's origin;
- that cookie;
- `Authorization: Bearer <token>` or `X-HF-Authorization: Bearer <token>` (gradio_client), checked
  with the controller and cached for a short while.
None of these ever reaches an app, private or public."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web

from spacehub.config import Settings
from spacehub.proxy.controllers import Controllers
from spacehub.signing import derive_key, verify
from spacehub.state.routes import SpaceRecord

COOKIE = "spacehub-access"
SIGN_PARAM = "__sign"
CREDENTIAL_HEADERS = frozenset({"authorization", "x-hf-authorization"})
DECISION_TTL = 10.0  # how late a revoked token or an ended session may still open an app
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    set_cookie: str | None = None


def _bearer(value: str | None) -> str | None:
    """The token of a `Bearer` header value; None for anything else (tokens are printable ASCII)."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and token.isascii() and token.isprintable() else None


class AppAccess:
    def __init__(self, settings: Settings, controllers: Controllers):
        self.settings = settings
        self.controllers = controllers
        self.key = derive_key(settings.resolved_internal_token)
        self._decisions: OrderedDict[tuple[str, int], tuple[bool, float]] = OrderedDict()

    async def check(
        self, request: web.BaseRequest, record: SpaceRecord, prefix: str, session: aiohttp.ClientSession
    ) -> Decision:
        """Whether the request may reach the app (public, or a credential); `__sign` also sets the cookie."""
        if not record.private:
            return Decision(True)
        signed = request.query.get(SIGN_PARAM)
        if signed and await self._link_allowed(signed, record, session):
            return Decision(True, self._cookie(signed, prefix, request.host))
        cookie = request.cookies.get(COOKIE)
        if cookie and await self._link_allowed(cookie, record, session):
            return Decision(True)
        token = _bearer(request.headers.get("authorization")) or _bearer(
            request.headers.get("x-hf-authorization")
        )
        if token and await self._allowed(session, record.id, {"X-Spacehub-User-Token": token}):
            return Decision(True)
        return Decision(False)

    async def _link_allowed(self, signed: str, record: SpaceRecord, session: aiohttp.ClientSession) -> bool:
        """A signed app link for this space, whose user is still signed in where it was issued (a
        password change or a disabled account ends it) and may still read the space."""
        claims = verify(signed, self.key)
        if claims is None or claims.get("space") != record.id:
            return False
        holder = {"X-Spacehub-Session": f"{claims.get('uid')}:{claims.get('epoch')}"}
        return await self._allowed(session, record.id, holder)

    def _cookie(self, signed: str, prefix: str, host: str) -> str:
        """The access cookie. The hub shows apps in an iframe, often from another site (hub at
        example.com, apps at *.example.app; or 127.0.0.1 and *.localhost): there the cookie must
        be `SameSite=None`, which needs `Secure`, which browsers accept over HTTPS and on localhost.
        `Partitioned` keeps it to the embedding site, and lets it through third-party cookie blocking."""
        claims = verify(signed, self.key) or {}
        max_age = max(0, int(claims.get("exp", 0) - time.time()))
        name = hostname(host)
        if self.settings.public_scheme == "https" or name == "localhost" or name.endswith(".localhost"):
            same_site = "SameSite=None; Secure; Partitioned"
        else:
            same_site = "SameSite=Lax"
        return f"{COOKIE}={signed}; Path={prefix or '/'}; Max-Age={max_age}; HttpOnly; {same_site}"

    async def _allowed(
        self, session: aiohttp.ClientSession, space_id: int, credential: dict[str, str]
    ) -> bool:
        """Whether the controller lets this credential (a user token, or a signed-in session) read the
        space; answers are cached for DECISION_TTL seconds."""
        key = (hashlib.sha256(repr(sorted(credential.items())).encode()).hexdigest(), space_id)
        cached = self._decisions.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        allowed = await self._ask(session, space_id, credential)
        self._decisions[key] = (allowed, time.monotonic() + DECISION_TTL)
        self._decisions.move_to_end(key)
        while len(self._decisions) > CACHE_SIZE:
            self._decisions.popitem(last=False)
        return allowed

    async def _ask(self, session: aiohttp.ClientSession, space_id: int, credential: dict[str, str]) -> bool:
        """The controllers' answer, from the first that takes the connection."""
        headers = {"Authorization": f"Bearer {self.settings.resolved_internal_token}", **credential}
        for controller in self.controllers.in_order():
            try:
                async with session.get(
                    f"{controller}/api/internal/authorize",
                    params={"space_id": str(space_id)},
                    headers=headers,
                ) as response:
                    return response.status == 200 and bool((await response.json()).get("allowed"))
            except aiohttp.ClientConnectorError:
                self.controllers.refused(controller)
        raise aiohttp.ClientConnectionError("no controller answers")


def without_credentials(request: web.BaseRequest, path: str) -> tuple[str, str | None]:
    """The path without `__sign`, and the Cookie header without the access cookie (None: drop it)."""
    base, _, query = path.partition("?")
    if query and SIGN_PARAM in query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != SIGN_PARAM]
        path = f"{base}?{urlencode(kept)}" if kept else base
    raw_cookie = request.headers.get("cookie")
    if not raw_cookie or COOKIE not in raw_cookie:
        return path, raw_cookie
    cookies = [part.strip() for part in raw_cookie.split(";")]
    others = [c for c in cookies if c and c.split("=", 1)[0].strip() != COOKIE]
    return path, "; ".join(others) or None


def hostname(host: str | None) -> str:
    """The Host header without its port (IPv6 literals are never app hosts)."""
    host = (host or "").lower()
    if host.startswith("["):
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host
