"""Engine and sessions: SQLite by default (WAL, foreign keys on), PostgreSQL in production (through
psycopg 3, whatever driver the URL names or does not)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from spacehub.errors import BadRequest


@lru_cache
def get_engine(url: str) -> Engine:
    """The engine for `url`, one per URL: SQLite with WAL and foreign keys, others with connection checks."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver the project installs
    engine = create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    return engine


def _refuse_nul(_conn: Any, _cursor: Any, _statement: str, parameters: Any, *_: Any) -> None:
    """PostgreSQL stores no NUL in text (SQLite does): text with one is the user's error, a 400."""
    rows = parameters if isinstance(parameters, list | tuple) else [parameters]
    for row in rows:
        values = row.values() if isinstance(row, dict) else row if isinstance(row, list | tuple) else [row]
        if any(isinstance(value, str) and "\x00" in value for value in values):
            raise BadRequest("text may not contain NUL characters (\\x00)")


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@lru_cache
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    """The session factory for `url`, one per URL; objects stay usable after a commit."""
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def after_commit(session: Session, callback: Callable[[], object], *, first: bool = False) -> None:
    """Run `callback` once `session` commits (dropped on rollback): for side effects others must
    not see before the rows they refer to exist, such as a job an agent may pick up at once."""
    callbacks = session.info.setdefault("after_commit", [])
    callbacks.insert(0, callback) if first else callbacks.append(callback)


def before_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run `callback` as `session` commits, while it can still read (to gather what `after_commit`
    callbacks will publish)."""
    session.info.setdefault("before_commit", []).append(callback)


@event.listens_for(Session, "before_commit")
def _run_before_commit(session: Session) -> None:
    for callback in session.info.pop("before_commit", []):
        callback()


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop("after_commit", []):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, _previous_transaction: Any) -> None:
    for key in ("before_commit", "after_commit", "spaces to publish"):
        session.info.pop(key, None)
