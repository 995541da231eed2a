"""Pure parts of the web UI: passwords, sessions, CSRF tokens, rendering helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spacehub.controller.accounts import PASSWORDS, check_password, hash_password
from spacehub.controller.listing import trending_score
from spacehub.http.sessions import check_csrf, csrf_token, read_session, session_token
from spacehub.web.account import safe_next
from spacehub.web.render import (
    duration,
    file_size,
    gradient,
    profile_url,
    render_markdown,
    stage_kind,
    time_ago,
)


def test_passwords_are_salted_and_checked() -> None:
    first, second = hash_password("hunter22"), hash_password("hunter22")
    assert first != second and "hunter22" not in first
    assert check_password("hunter22", first) and check_password("hunter22", second)
    assert not check_password("hunter23", first)
    assert not check_password("hunter22", None) and not check_password("hunter22", "md5$whatever")


def test_password_hashes_record_their_parameters() -> None:
    """argon2id with its cost in the hash itself: raising the cost later is possible (and the
    weaker hashes are found to need a rehash); the previous release's scrypt hashes still verify."""
    stored = hash_password("hunter22")
    assert stored.startswith("$argon2id$") and f"m={PASSWORDS.memory_cost}" in stored
    assert not PASSWORDS.check_needs_rehash(stored)
    stronger = type(PASSWORDS)(time_cost=PASSWORDS.time_cost + 1)
    assert stronger.check_needs_rehash(stored)
    legacy = "scrypt$MDEyMzQ1Njc4OWFiY2RlZg==$Q6ZTPkEbyMFBLlJf1nHpwrdeZKtzm9j0AlgX5Vp9tKU="  # "hunter22"
    assert check_password("hunter22", legacy) and not check_password("hunter23", legacy)


def test_sessions_are_signed_and_carry_the_epoch() -> None:
    cookie = session_token("secret", 7, 3)
    assert read_session("secret", cookie) == (7, 3)
    assert read_session("other secret", cookie) is None
    assert read_session("secret", cookie[:-3] + "abc") is None
    assert read_session("secret", None) is None and read_session("secret", "garbage") is None


def test_csrf_tokens_bind_to_the_browsers_seed_and_session() -> None:
    token = csrf_token("secret", "seed-1", "7:0")
    assert check_csrf("secret", "seed-1", token, "7:0")
    assert not check_csrf("secret", "seed-2", token, "7:0")
    assert not check_csrf("other", "seed-1", token, "7:0")
    assert not check_csrf("secret", None, token, "7:0") and not check_csrf("secret", "seed-1", None, "7:0")
    assert not check_csrf("secret", "", csrf_token("secret", "", "7:0"), "7:0")
    # A seed tossed in by another site comes with its own session's token, which is not this one's.
    assert not check_csrf("secret", "seed-1", token, "8:0") and not check_csrf(
        "secret", "seed-1", token, "7:1"
    )
    assert not check_csrf("secret", "seed-1", "ü" * 64, "7:0")


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/spaces/a/b", "/spaces/a/b"), ("//evil.example", "/spaces"), ("https://evil.example", "/spaces"),
     (None, "/spaces"), ("", "/spaces")],
)  # fmt: skip
def test_after_login_only_paths_of_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_readmes_cannot_run_script_on_the_hub() -> None:
    rendered = str(render_markdown('<img src=x onerror="alert(1)">\n\n[x](javascript:alert(1)) <b>bold</b>'))
    assert "<img" not in rendered and "<b>" not in rendered and "&lt;b&gt;" in rendered
    assert 'href="javascript:' not in rendered
    table = str(render_markdown("| a |\n|---|\n| 1 |\n\n~~old~~"))
    assert "<table>" in table and "<s>old</s>" in table


def test_rendering_helpers() -> None:
    assert duration(172800) == "48 hours" and duration(900) == "15 minutes" and duration(90) == "90 seconds"
    assert duration(14 * 86400) == "14 days" and duration(86400) == "24 hours"
    assert file_size(0) == "0 B" and file_size(1536) == "1.5 KB" and file_size(5 * 1024**3) == "5.0 GB"
    now = datetime.now(UTC)
    assert time_ago(now) == "just now" and time_ago(now - timedelta(hours=3)) == "3 hours ago"
    assert time_ago(None) == "never" and time_ago((now - timedelta(minutes=1)).timestamp()) == "1 minute ago"
    assert stage_kind("RUNNING") == "ok" and stage_kind("BUILD_ERROR") == "error"
    assert stage_kind("BUILDING") == "busy" and stage_kind("PAUSED") == "idle" and stage_kind(None) == "idle"
    assert (
        gradient({"colorFrom": "red", "colorTo": "nonsense"}) == "linear-gradient(135deg, #ef4444, #a855f7)"
    )
    assert profile_url("alice") == "/alice" and profile_url("admin") == "/users/admin"


def test_trending_weighs_likes_and_fresh_activity() -> None:
    now = 1_000_000.0
    assert trending_score(0, now, now) > trending_score(0, now - 86400, now)
    assert trending_score(20, now - 30 * 86400, now) > trending_score(2, now, now)
