"""A sign-in with a password stored under weaker parameters (an older release's scrypt, or argon2 at
a lower cost) stores it again under today's; a wrong password changes nothing."""

from __future__ import annotations

from argon2 import PasswordHasher

from spacehub.controller.accounts import PASSWORDS, proves_identity
from spacehub.db.models import Account

LEGACY = "scrypt$MDEyMzQ1Njc4OWFiY2RlZg==$Q6ZTPkEbyMFBLlJf1nHpwrdeZKtzm9j0AlgX5Vp9tKU="  # "hunter22"


def test_weaker_hashes_are_replaced_at_sign_in() -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash("hunter22")
    for stored in (LEGACY, weaker):
        account = Account(name="alice", password_hash=stored)
        assert proves_identity(None, account, "hunter22")  # type: ignore[arg-type]  # no token lookup
        assert account.password_hash != stored and account.password_hash.startswith("$argon2id$")
        assert not PASSWORDS.check_needs_rehash(account.password_hash)


def test_a_current_hash_is_kept() -> None:
    current = PASSWORDS.hash("hunter22")
    account = Account(name="alice", password_hash=current)
    assert proves_identity(None, account, "hunter22")  # type: ignore[arg-type]
    assert account.password_hash == current
