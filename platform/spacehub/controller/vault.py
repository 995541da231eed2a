"""Space secrets at rest: encrypted (Fernet: AES-128-CBC and HMAC-SHA256, from `cryptography`) with a
key kept outside the database (SPACEHUB_SECRETS_KEY, or a file in the data directory), so that a
copy of the database alone gives none of them away."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "fernet:"


class Vault:
    def __init__(self, key: str):
        self.fernet = Fernet(key.encode())

    def seal(self, value: str) -> str:
        """A secret's value as the database keeps it."""
        return PREFIX + self.fernet.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str:
        """A secret's value from what the database keeps (a value an older release stored in the
        clear is returned as it is, until `is_sealed` says it was sealed)."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self.fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise ValueError("a space secret does not open with this installation's secrets key") from None

    @staticmethod
    def is_sealed(stored: str) -> bool:
        """Whether a stored value is encrypted (older releases kept secrets in the clear)."""
        return stored.startswith(PREFIX)
