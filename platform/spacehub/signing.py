"""Short-lived signed values (JWT, HS256, with PyJWT): app links that open a private app without the
user's token ever reaching it, and the browser session cookie. Each use has its own key, derived
from the installation's internal secret."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import jwt

APP_ACCESS_PURPOSE = b"spacehub app access v1"


def derive_key(secret: str, purpose: bytes = APP_ACCESS_PURPOSE) -> bytes:
    """A key for one purpose, derived from the installation's internal secret."""
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


def sign(claims: dict[str, Any], key: bytes, expires_in: int) -> tuple[str, int]:
    """A token carrying `claims`, valid `expires_in` seconds; returns it and its expiry time."""
    now = int(time.time())
    expires = now + expires_in
    return jwt.encode({**claims, "iat": now, "exp": expires}, key, algorithm="HS256"), expires


def verify(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token; None for anything else (any bytes, any length)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp"]})
    except (jwt.InvalidTokenError, UnicodeError, ValueError, TypeError):
        return None
    return claims


def same_secret(given: str, expected: str) -> bool:
    """Whether a secret someone sent equals ours, in constant time, whatever characters it holds."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())
