"""Browser sessions on the hub's origin: signed session cookies, and the CSRF tokens that every
form carries."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from spacehub.signing import derive_key, same_secret, sign, verify

SESSION_COOKIE = "spacehub-session"
SESSION_SECONDS = 30 * 24 * 3600
SESSION_PURPOSE = b"spacehub browser session v1"
CSRF_PURPOSE = b"spacehub csrf v1"


def session_token(secret: str, account_id: int, epoch: int) -> str:
    """The cookie value for a signed-in account; `epoch` lets the account end all its sessions."""
    token, _exp = sign(
        {"uid": account_id, "epoch": epoch}, derive_key(secret, SESSION_PURPOSE), SESSION_SECONDS
    )
    return token


def read_session(secret: str, cookie: str | None) -> tuple[int, int] | None:
    """(account id, session epoch) of a valid session cookie."""
    if not cookie:
        return None
    claims = verify(cookie, derive_key(secret, SESSION_PURPOSE))
    if claims is None or not isinstance(claims.get("uid"), int):
        return None
    return claims["uid"], int(claims.get("epoch", 0))


CSRF_COOKIE = "spacehub-csrf"


def new_csrf_seed() -> str:
    """A random seed for a browser's CSRF cookie."""
    return secrets.token_urlsafe(24)


def csrf_token(secret: str, seed: str, session: str) -> str:
    """The token forms carry: bound to a random cookie of the browser (another site can make the
    browser post, but cannot read the cookie) and to its session (`account:epoch`, or `-`). An app
    on a sibling subdomain can set the seed cookie for the hub's domain (cookie tossing), but the
    token of its own seed is bound to its own session, not to the visitor's."""
    message = f"{seed}|{session}".encode("utf-8", "surrogateescape")
    return hmac.new(derive_key(secret, CSRF_PURPOSE), message, hashlib.sha256).hexdigest()


def check_csrf(secret: str, seed: str | None, token: str | None, session: str) -> bool:
    """Whether a form's CSRF `token` matches the browser's cookie `seed` and its session."""
    return bool(seed) and bool(token) and same_secret(token or "", csrf_token(secret, seed or "", session))
