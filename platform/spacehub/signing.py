"""Short-lived signed credentials (JWT, HS256) that let a browser reach a private app without the
user's token ever reaching the app: the hub signs, the edge proxy verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

APP_ACCESS_PURPOSE = b"spacehub app access v1"


def derive_key(secret: str, purpose: bytes = APP_ACCESS_PURPOSE) -> bytes:
    """A key for one purpose, derived from the installation's internal secret."""
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], key: bytes, expires_in: int) -> tuple[str, int]:
    """A token carrying `claims`, valid `expires_in` seconds; returns it and its expiry time."""
    now = int(time.time())
    payload = {**claims, "iat": now, "exp": now + expires_in}
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = _b64(hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest())
    return f"{header}.{body}.{signature}", payload["exp"]


def verify(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token; None otherwise."""
    try:
        header, body, signature = token.split(".")
        expected = _b64(hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            return None
        if json.loads(_unb64(header)).get("alg") != "HS256":
            return None
        claims: dict[str, Any] = json.loads(_unb64(body))
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        return None
    return claims
