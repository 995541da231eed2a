"""Users, organizations, passwords (argon2id, parameters stored in each hash) and access tokens
(stored as SHA-256 digests, shown once)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spacehub.db.models import Account, AccountKind, Membership, Token, TokenRole, utcnow
from spacehub.errors import BadRequest, Conflict, NotFound
from spacehub.repos.commits import Author

TOKEN_PREFIX = "shub_"
MIN_PASSWORD = 8
# argon2-cffi's defaults (RFC 9106's second recommendation). Each hash records its parameters, so
# raising them later rehashes passwords as their owners log in.
PASSWORDS = PasswordHasher()
_LEGACY_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # hashes of releases before argon2
ADMIN_NAME = "admin"
ADMIN_TOKEN_NAME = "SPACEHUB_ADMIN_TOKEN"
NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
# Top-level paths of the hub: nobody may be called like them.
RESERVED_NAMES = frozenset(
    {
        "admin", "api", "app", "apps", "assets", "auth", "datasets", "docs", "favicon.ico", "healthz",
        "hf-inference", "join",
        "login", "logout", "models", "new", "new-space", "oauth", "organizations", "robots.txt", "settings",
        "signup", "spaces", "static", "status", "tokens", "user", "users",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account and what its token allows, or the platform itself."""

    account: Account | None
    role: TokenRole = TokenRole.READ
    internal: bool = False
    token_id: int | None = None
    # The OAuth scopes of a token issued to an app; None for every other credential.
    scopes: frozenset[str] | None = None

    @property
    def can_write(self) -> bool:
        """Whether the caller may change things: the platform itself, or a write token (an app's
        token only with the `write-repos` scope)."""
        if self.scopes is not None and "write-repos" not in self.scopes:
            return False
        return self.internal or self.role == TokenRole.WRITE

    @property
    def can_read_private(self) -> bool:
        """Whether the caller may read the private repositories its account may: every credential
        but an app's token without `read-repos` or `write-repos`."""
        return self.scopes is None or bool(self.scopes & {"read-repos", "write-repos"})

    @property
    def is_admin(self) -> bool:
        """Whether the caller has administrator rights: the platform itself, or an admin account
        (never through a token issued to an app)."""
        return self.internal or (self.account is not None and self.account.is_admin and self.scopes is None)

    @property
    def name(self) -> str | None:
        """The account's name; None for anonymous callers and the platform itself."""
        return self.account.name if self.account else None

    @property
    def author(self) -> Author:
        """Who the commits it makes through the API and the pages are by."""
        if self.account is None:
            return Author("spacehub", "spacehub@localhost")
        return Author(
            self.account.fullname or self.account.name, f"{self.account.name}@users.noreply.spacehub"
        )


ANONYMOUS = Principal(account=None)


def digest(token: str) -> str:
    """The SHA-256 hex digest of a token, which is all the database keeps of it."""
    return hashlib.sha256(token.encode()).hexdigest()


def validate_name(name: str, what: str = "name") -> str:
    """`name` if it is valid for an account or repository (as on the Hub); BadRequest otherwise."""
    if not NAME_RE.match(name) or "--" in name or ".." in name or name.endswith(".git"):
        raise BadRequest(
            f"invalid {what} {name!r}: use letters, digits, '-', '_' and '.', start and end with a "
            "letter or digit, at most 96 characters, no '--' or '..'"
        )
    return name


def find_account(session: Session, name: str) -> Account | None:
    """The user or organization called `name`, compared without case."""
    if "\x00" in name:
        return None  # no name has one, and PostgreSQL cannot even compare it
    return session.scalar(select(Account).where(func.lower(Account.name) == name.lower()))


def create_account(
    session: Session,
    name: str,
    *,
    kind: AccountKind = AccountKind.USER,
    is_admin: bool = False,
    fullname: str | None = None,
    email: str | None = None,
    password_hash: str | None = None,
) -> Account:
    """A new user or organization; BadRequest for an invalid or reserved name, Conflict for a taken one."""
    validate_name(name, "account name")
    if name.lower() in RESERVED_NAMES:
        raise BadRequest(f"{name!r} is reserved")
    if find_account(session, name) is not None:
        raise Conflict(f"the name {name!r} is taken")
    account = Account(
        name=name, kind=kind, is_admin=is_admin, fullname=fullname, email=email, password_hash=password_hash
    )
    session.add(account)
    session.flush()
    return account


def issue_token(
    session: Session,
    account: Account,
    name: str,
    role: TokenRole,
    *,
    scopes: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[Token, str]:
    """A new token for `account` (limited to OAuth `scopes` and ending at `expires_at`, for one
    issued to an app); the plaintext is returned once and never stored."""
    if account.kind != AccountKind.USER:
        raise BadRequest("tokens belong to users, not organizations")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(30)
    token = Token(
        account=account,
        name=name,
        role=role,
        digest=digest(plaintext),
        hint=plaintext[-4:],
        scopes=scopes,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token, plaintext


def revoke_token(session: Session, token_id: int, owner: Account | None = None) -> Token:
    """Revoke a token (of `owner` only, when given); NotFound otherwise. Revoking it again changes nothing."""
    token = session.get(Token, token_id)
    if token is None or (owner is not None and token.account_id != owner.id):
        raise NotFound(f"no token {token_id}")
    token.revoked_at = token.revoked_at or utcnow()
    return token


def ensure_admin(session: Session, token_value: str) -> Account:
    """User `admin` exists, is an administrator and holds `token_value` as a write token."""
    admin = find_account(session, ADMIN_NAME)
    if admin is None:
        admin = Account(name=ADMIN_NAME, kind=AccountKind.USER, is_admin=True, fullname="Administrator")
        session.add(admin)
        session.flush()
    admin.is_admin = True
    admin.disabled = False
    token_digest = digest(token_value)
    existing = session.scalar(select(Token).where(Token.digest == token_digest))
    if existing is None:
        session.add(
            Token(
                account=admin,
                name=ADMIN_TOKEN_NAME,
                role=TokenRole.WRITE,
                digest=token_digest,
                hint=token_value[-4:],
            )
        )
    elif existing.account_id != admin.id or existing.revoked_at is not None:
        existing.account_id, existing.revoked_at, existing.role = admin.id, None, TokenRole.WRITE
    session.flush()
    return admin


def authenticate(session: Session, token_value: str) -> Principal | None:
    """The principal a token stands for, or None if it is unknown, revoked or its user disabled."""
    token = session.scalar(select(Token).where(Token.digest == digest(token_value)))
    if token is None or token.revoked_at is not None or token.account.disabled:
        return None
    now = utcnow()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now
    scopes = frozenset(token.scopes.split()) if token.scopes is not None else None
    return Principal(account=token.account, role=TokenRole(token.role), token_id=token.id, scopes=scopes)


WRITING_ROLES = ("admin", "write")


def is_member(session: Session, org: Account, user: Account, *, write: bool = False) -> bool:
    """Whether `user` belongs to `org`; with `write`, as one of its admins or writers."""
    membership = session.get(Membership, (org.id, user.id))
    if membership is None:
        return False
    return membership.role in WRITING_ROLES if write else True


def writable_namespaces(session: Session, account: Account) -> list[str]:
    """Where `account` may create repositories: its own namespace, then its organizations' where
    it is an admin or a writer."""
    orgs = session.scalars(
        select(Account.name)
        .join(Membership, Membership.org_id == Account.id)
        .where(Membership.user_id == account.id, Membership.role.in_(WRITING_ROLES))
    )
    return [account.name, *orgs]


def session_principal(session: Session, holder: str) -> Principal | None:
    """Who holds a signed app link: its `account:epoch`, if that account is enabled and still in
    that session epoch (a password change or a disabled account ends its links)."""
    account_id, _, epoch = holder.partition(":")
    if not account_id.isdigit() or not epoch.isdigit():
        return None
    account = session.get(Account, int(account_id))
    if account is None or account.disabled or account.session_epoch != int(epoch):
        return None
    return Principal(account=account, role=TokenRole.READ)


# Passwords ---------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A hash of `password` that records how it was made (argon2id and its parameters)."""
    return PASSWORDS.hash(password)


def check_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored` (an argon2 hash, or an older release's scrypt one)."""
    if not stored:
        return False
    if stored.startswith("scrypt$"):
        _, salt, expected = stored.split("$")
        digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32, **_LEGACY_SCRYPT)
        return hmac.compare_digest(digest, base64.b64decode(expected))
    try:
        return PASSWORDS.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def proves_identity(session: Session, account: Account, secret: str) -> bool:
    """`secret` is the account's password, or one of its write tokens (accounts an operator made,
    the admin among them, have a token and no password). A password hashed with weaker parameters
    than today's is rehashed on the way."""
    if check_password(secret, account.password_hash):
        assert account.password_hash is not None
        if account.password_hash.startswith("scrypt$") or PASSWORDS.check_needs_rehash(account.password_hash):
            account.password_hash = hash_password(secret)
        return True
    principal = authenticate(session, secret) if secret else None
    if principal is None or principal.scopes is not None:  # never a token issued to an app
        return False
    return principal.account is account and principal.role == TokenRole.WRITE


def set_password(account: Account, new: str) -> None:
    """Change an account's password; its other sessions end."""
    if len(new) < MIN_PASSWORD:
        raise BadRequest(f"The new password needs at least {MIN_PASSWORD} characters.")
    account.password_hash = hash_password(new)
    end_sessions(account)


def end_sessions(account: Account) -> None:
    """End every browser session of the account, and the app links issued in them (they carry the
    epoch this moves past)."""
    account.session_epoch += 1


def members_of(session: Session, org: Account) -> list[Account]:
    """The organization's members."""
    query = (
        select(Account).join(Membership, Membership.user_id == Account.id).where(Membership.org_id == org.id)
    )
    return list(session.scalars(query))


def organizations_of(session: Session, user: Account) -> list[Account]:
    """The organizations the user belongs to."""
    query = (
        select(Account).join(Membership, Membership.org_id == Account.id).where(Membership.user_id == user.id)
    )
    return list(session.scalars(query))


def tokens_of(session: Session, account: Account) -> list[Token]:
    """The account's tokens, newest first."""
    return list(
        session.scalars(select(Token).where(Token.account_id == account.id).order_by(Token.id.desc()))
    )


def memberships_of(session: Session, user: Account) -> list[tuple[Membership, Account]]:
    """The user's memberships, each with its organization."""
    query = (
        select(Membership, Account)
        .join(Account, Account.id == Membership.org_id)
        .where(Membership.user_id == user.id)
    )
    return [(membership, org) for membership, org in session.execute(query).all()]


def token_of(session: Session, principal: Principal) -> Token | None:
    """The token a principal came with, if it came with one of the hub's tokens."""
    return session.get(Token, principal.token_id) if principal.token_id else None
