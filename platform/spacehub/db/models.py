"""Durable state: accounts, tokens, repositories, spaces and their builds.

The database and the git repositories are the source of truth; Redis only mirrors what can be
rebuilt from here (routes, stages for the proxy, queues, log tails)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from spacehub.stages import Stage


def utcnow() -> datetime:
    """The time now, timezone-aware in UTC (what every datetime column stores)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, timezone-aware datetimes out (SQLite drops the zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store a UTC datetime without its zone; naive datetimes are refused."""
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """A stored datetime, made aware in UTC again."""
        return value.replace(tzinfo=UTC) if value is not None else None


class StrEnumType(TypeDecorator[Any]):
    """A `str` enum stored as its plain value, read back as the enum."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int):
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        """Store the enum's plain value."""
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        """The enum member of a stored value."""
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


# An id names things outside the database too (job ids, log files, image tags, container labels):
# one freed by a deletion must never name something new. SQLite reuses the highest rowid without
# AUTOINCREMENT; other databases' sequences never go back.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class AccountKind(StrEnum):
    USER = "user"
    ORG = "org"


class TokenRole(StrEnum):
    READ = "read"
    WRITE = "write"


class RepoType(StrEnum):
    MODEL = "model"
    DATASET = "dataset"
    SPACE = "space"


class BuildStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    STARTING = "starting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"

    @property
    def is_active(self) -> bool:
        """Whether the build is still under way (queued, building or starting)."""
        return self in (BuildStatus.QUEUED, BuildStatus.BUILDING, BuildStatus.STARTING)


class Account(Base):
    """A user or an organization: both own repositories under their name."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(96))
    kind: Mapped[AccountKind] = mapped_column(StrEnumType(AccountKind, 8), default=AccountKind.USER)
    fullname: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[Token]] = relationship(back_populates="account", cascade="all, delete-orphan")

    __table_args__ = (Index("ix_accounts_name_lower", func.lower(name), unique=True), NEVER_REUSE_IDS)


class Membership(Base):
    """A user's membership of an organization."""

    __tablename__ = "memberships"

    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="write")


class Token(Base):
    """An access token; only its SHA-256 digest is stored."""

    __tablename__ = "tokens"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[TokenRole] = mapped_column(StrEnumType(TokenRole, 8))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # Tokens issued to apps through "Sign in with the hub" (OAuth) are limited to the scopes the
    # user granted and expire; the user's own tokens have neither.
    scopes: Mapped[str | None] = mapped_column(String(300))
    expires_at: Mapped[datetime | None] = mapped_column()

    account: Mapped[Account] = relationship(back_populates="tokens")


class Repo(Base):
    """A git repository: model, dataset or space."""

    __tablename__ = "repos"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[RepoType] = mapped_column(StrEnumType(RepoType, 8))
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(96))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[Account] = relationship(lazy="joined")
    space: Mapped[Space | None] = relationship(
        back_populates="repo", cascade="all, delete-orphan", uselist=False, lazy="joined"
    )

    __table_args__ = (
        Index("ix_repos_identity", type, owner_id, func.lower(name), unique=True),
        NEVER_REUSE_IDS,
    )

    @property
    def full_name(self) -> str:
        """`owner/name`, as in the repository's URLs."""
        return f"{self.owner.name}/{self.name}"


class Space(Base):
    """What a space should be (desired state) and what it is (reported state)."""

    __tablename__ = "spaces"

    repo_id: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    sdk: Mapped[str] = mapped_column(String(16))
    subdomain: Mapped[str] = mapped_column(String(200), unique=True)
    hardware: Mapped[str] = mapped_column(String(32), default="cpu-basic")
    sleep_time: Mapped[int | None] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # `protected` visibility: the app is open to everyone while the repository stays private.
    protected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The owner's own domain for the app (lowercase), served beside its subdomain.
    custom_domain: Mapped[str | None] = mapped_column(String(253), unique=True)
    # Buckets and repositories mounted in the app's container: the Hub's volume objects
    # (`type`, `source`, `mountPath`, `revision`, `readOnly`, `path`), validated when set.
    volumes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    stage: Mapped[Stage] = mapped_column(StrEnumType(Stage, 24), default=Stage.NO_APP_FILE)
    message: Mapped[str | None] = mapped_column(Text)
    stage_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    desired_sha: Mapped[str | None] = mapped_column(String(40))
    current_build_id: Mapped[int | None] = mapped_column(ForeignKey("builds.id", use_alter=True))
    live_build_id: Mapped[int | None] = mapped_column(ForeignKey("builds.id", use_alter=True))

    # What runs now: enough to find it again after a restart of any component.
    host_id: Mapped[str | None] = mapped_column(String(200))
    container_id: Mapped[str | None] = mapped_column(String(100))
    upstream: Mapped[str | None] = mapped_column(String(200))
    running_sha: Mapped[str | None] = mapped_column(String(40))
    started_at: Mapped[datetime | None] = mapped_column()

    repo: Mapped[Repo] = relationship(back_populates="space")
    current_build: Mapped[Build | None] = relationship(foreign_keys=[current_build_id])
    live_build: Mapped[Build | None] = relationship(foreign_keys=[live_build_id])


class Build(Base):
    """One attempt to turn a commit of a space into a running app."""

    __tablename__ = "builds"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.repo_id", ondelete="CASCADE"), index=True)
    sha: Mapped[str] = mapped_column(String(40))
    status: Mapped[BuildStatus] = mapped_column(StrEnumType(BuildStatus, 12), default=BuildStatus.QUEUED)
    error_message: Mapped[str | None] = mapped_column(Text)
    factory: Mapped[bool] = mapped_column(Boolean, default=False)
    flavor: Mapped[str] = mapped_column(String(32))
    host_id: Mapped[str | None] = mapped_column(String(200))
    image: Mapped[str | None] = mapped_column(String(300))
    # The README's startup_duration_timeout, in seconds; None: the platform's default.
    startup_timeout: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class SpaceSecret(Base):
    """A write-only environment variable of a space: its value never leaves the platform's internals."""

    __tablename__ = "space_secrets"

    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.repo_id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpaceVariable(Base):
    """A public environment variable of a space (also a build argument for docker spaces)."""

    __tablename__ = "space_variables"

    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.repo_id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Like(Base):
    __tablename__ = "likes"

    repo_id: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Discussion(Base):
    """A discussion or a pull request on a repository, numbered per repository from 1. A pull
    request's commits live at `refs/pr/{num}`; merged, it records the commit it made."""

    __tablename__ = "discussions"

    id: Mapped[int] = mapped_column(primary_key=True)
    repo_id: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"))
    num: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    is_pull_request: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(8), default="open")  # open, closed, merged, draft
    target_branch: Mapped[str | None] = mapped_column(String(200))
    merge_commit: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    repo: Mapped[Repo] = relationship()
    author: Mapped[Account | None] = relationship()
    events: Mapped[list[DiscussionEvent]] = relationship(
        back_populates="discussion", cascade="all, delete-orphan", order_by="DiscussionEvent.id"
    )

    __table_args__ = (Index("ix_discussions_repo_num", repo_id, num, unique=True), NEVER_REUSE_IDS)


class DiscussionEvent(Base):
    """What happened in a discussion, in order: a comment (its text, edits), a status or title
    change, a commit pushed to a pull request."""

    __tablename__ = "discussion_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    discussion_id: Mapped[int] = mapped_column(ForeignKey("discussions.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(16))  # comment, status-change, title-change, commit
    author_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    discussion: Mapped[Discussion] = relationship(back_populates="events")
    author: Mapped[Account | None] = relationship()

    __table_args__ = (NEVER_REUSE_IDS,)


class OAuthConsent(Base):
    """A user's consent that an app (an OAuth client) may sign them in with a set of scopes."""

    __tablename__ = "oauth_consents"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scopes: Mapped[str] = mapped_column(String(300), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningKey(Base):
    """The hub's key for signing OpenID Connect ID tokens: a private JWK, sealed like space secrets."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    sealed_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Bucket(Base):
    """A storage bucket: files outside git that apps mount read-write and keep across restarts,
    rebuilds and moves. Its files live in the bucket store under the bucket's id."""

    __tablename__ = "buckets"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(96))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    quota_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[Account] = relationship(lazy="joined")

    __table_args__ = (Index("ix_buckets_identity", owner_id, func.lower(name), unique=True), NEVER_REUSE_IDS)

    @property
    def full_name(self) -> str:
        """`owner/name`, as in the bucket's URLs."""
        return f"{self.owner.name}/{self.name}"
