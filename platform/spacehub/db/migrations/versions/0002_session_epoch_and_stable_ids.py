"""session epochs, and ids that are never reused

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:40:00
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Their ids name things outside the database (jobs, log files, images): SQLite reuses the highest
# rowid of a table unless it is declared AUTOINCREMENT, which takes rebuilding the table.
STABLE_ID_TABLES = ("accounts", "repos", "tokens", "builds")
# SQLite does not reflect indexes on expressions: a rebuilt table gets them back from here.
EXPRESSION_INDEXES: dict[str, list[tuple[str, list[str | sa.TextClause]]]] = {
    "accounts": [("ix_accounts_name_lower", [sa.text("lower(name)")])],
    "repos": [("ix_repos_identity", ["type", "owner_id", sa.text("lower(name)")])],
}


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name != "sqlite":
        return  # sequences never go back
    for table in STABLE_ID_TABLES:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
                pass
        for name, columns in EXPRESSION_INDEXES.get(table, []):
            op.create_index(name, table, columns, unique=True)


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("session_epoch")
