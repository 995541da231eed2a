"""The migrations build exactly the schema the models describe."""

import re
import warnings

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateIndex

from spacehub.db.migrate import alembic_config, upgrade
from spacehub.db.models import Account, Base, Membership, Repo, RepoType, Space, SpaceSecret, Token
from spacehub.db.session import get_engine, session_scope


def test_migrations_match_the_models(database_url: str) -> None:
    url = database_url
    upgrade(url)
    engine = get_engine(url)
    with engine.connect() as connection, warnings.catch_warnings():
        # Alembic cannot reflect SQLite's expression indexes: they are compared below instead.
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_expression_indexes_match_the_models(database_url: str) -> None:
    """The unique `lower(name)` indexes, which the comparison above cannot see."""
    url = database_url
    upgrade(url)
    engine = get_engine(url)
    declared = {
        index.name: normalized(str(CreateIndex(index).compile(dialect=engine.dialect)))
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if any(not isinstance(e, Column) for e in index.expressions)
    }
    assert set(declared) == {"ix_accounts_name_lower", "ix_buckets_identity", "ix_repos_identity"}
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            )
        else:  # PostgreSQL writes the definition its own way: `ON public.t USING btree (lower((name)::text))`
            rows = connection.execute(text("SELECT indexname, indexdef FROM pg_indexes"))
        built = {name: postgres_form(normalized(sql)) for name, sql in rows}
    assert {name: built.get(name) for name in declared} == declared


def normalized(sql: str) -> str:
    return re.sub(r"\s+", " ", sql.replace('"', "")).strip().lower()


def postgres_form(sql: str) -> str:
    """PostgreSQL's index definition in the form SQLAlchemy compiles (no schema, method or casts)."""
    sql = sql.replace(" on public.", " on ").replace(" using btree ", " ")
    return re.sub(r"lower\(\((\w+)\)::text\)", r"lower(\1)", sql)


def test_a_first_schema_database_upgrades_without_losing_a_row(database_url: str) -> None:
    url = database_url
    command.upgrade(alembic_config(url), "0001")
    now = "2026-11-22 19:00:00.000000"
    with get_engine(url).begin() as connection:  # foreign keys on, as the controller has them
        for statement in (
            "INSERT INTO accounts VALUES (1, 'ada', 'user', NULL, NULL, NULL, TRUE, FALSE, :now)",
            "INSERT INTO accounts VALUES (2, 'lab', 'org', NULL, NULL, NULL, FALSE, FALSE, :now)",
            "INSERT INTO memberships VALUES (2, 1, 'admin')",
            "INSERT INTO tokens VALUES (1, 1, 'w', 'write', 'digest', 'hint', :now, NULL, NULL)",
            "INSERT INTO repos VALUES (1, 'space', 2, 'demo', FALSE, '{}', 0, :now, :now)",
            "INSERT INTO repos VALUES (2, 'space', 2, 'gone', FALSE, '{}', 0, :now, :now)",
            "INSERT INTO spaces (repo_id, sdk, subdomain, hardware, paused, stage, stage_changed_at)"
            " VALUES (1, 'gradio', 'lab-demo', 'cpu-basic', FALSE, 'RUNNING', :now)",
            "INSERT INTO builds (id, space_id, sha, status, factory, flavor, created_at)"
            " VALUES (1, 1, 'abc', 'succeeded', FALSE, 'cpu-basic', :now)",
            "UPDATE spaces SET live_build_id = 1, current_build_id = 1",
            "INSERT INTO space_secrets VALUES (1, 'TOKEN', 'value', NULL, :now)",
        ):
            connection.execute(text(statement), {"now": now})
        if connection.dialect.name == "postgresql":  # rows the release made had their ids from these
            for table, last in (
                ("accounts", 2),
                ("tokens", 1),
                ("repos", 2),
                ("builds", 1),
            ):
                connection.execute(text(f"SELECT setval('{table}_id_seq', {last})"))

    upgrade(url)

    with session_scope(url) as session:
        ada = session.get(Account, 1)
        assert ada is not None and ada.session_epoch == 0 and ada.is_admin
        assert session.get(Membership, (2, 1)) is not None
        assert [t.name for t in session.scalars(select(Token))] == ["w"]
        space = session.get(Space, 1)
        assert space is not None and space.live_build_id == 1 and space.repo.owner.name == "lab"
        assert [s.key for s in session.scalars(select(SpaceSecret))] == ["TOKEN"]
        # The id of a deleted row is not handed out again, and names stay unique.
        session.delete(session.get(Repo, 2))
        session.flush()
        session.add(Repo(type=RepoType.MODEL, owner_id=1, name="fresh"))
        session.flush()
        assert session.scalars(select(Repo.id).where(Repo.name == "fresh")).one() == 3
        session.add(Account(name="ADA"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
    with get_engine(url).begin() as connection:  # and foreign keys still cascade
        connection.execute(text("DELETE FROM accounts WHERE id = 2"))
        assert connection.execute(text("SELECT count(*) FROM spaces")).scalar() == 0
