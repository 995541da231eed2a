"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 19:08:26.254274
"""

import sqlalchemy as sa
from alembic import op

import spacehub.db.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("fullname", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "memberships",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org_id", "user_id"),
    )
    op.create_table(
        "repos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("likes", sa.Integer(), nullable=False),
        sa.Column("created_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repos_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("created_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", spacehub.db.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", spacehub.db.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tokens_account_id"), ["account_id"], unique=False)

    op.create_table(
        "likes",
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_id", "account_id"),
    )
    op.create_table(
        "spaces",
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("sdk", sa.String(length=16), nullable=False),
        sa.Column("subdomain", sa.String(length=200), nullable=False),
        sa.Column("hardware", sa.String(length=32), nullable=False),
        sa.Column("sleep_time", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("stage_changed_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.Column("desired_sha", sa.String(length=40), nullable=True),
        sa.Column("current_build_id", sa.Integer(), nullable=True),
        sa.Column("live_build_id", sa.Integer(), nullable=True),
        sa.Column("host_id", sa.String(length=200), nullable=True),
        sa.Column("container_id", sa.String(length=100), nullable=True),
        sa.Column("upstream", sa.String(length=200), nullable=True),
        sa.Column("running_sha", sa.String(length=40), nullable=True),
        sa.Column("started_at", spacehub.db.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["current_build_id"], ["builds.id"], use_alter=True),
        sa.ForeignKeyConstraint(["live_build_id"], ["builds.id"], use_alter=True),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_id"),
        sa.UniqueConstraint("subdomain"),
    )
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("sha", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("factory", sa.Boolean(), nullable=False),
        sa.Column("flavor", sa.String(length=32), nullable=False),
        sa.Column("host_id", sa.String(length=200), nullable=True),
        sa.Column("image", sa.String(length=300), nullable=True),
        sa.Column("created_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.Column("started_at", spacehub.db.models.UTCDateTime(), nullable=True),
        sa.Column("finished_at", spacehub.db.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.repo_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_builds_space_id"), ["space_id"], unique=False)

    op.create_table(
        "space_secrets",
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("updated_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.repo_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("space_id", "key"),
    )
    op.create_table(
        "space_variables",
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("updated_at", spacehub.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.repo_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("space_id", "key"),
    )
    # Case-insensitive identities (autogenerate cannot see expression indexes).
    op.create_index("ix_accounts_name_lower", "accounts", [sa.text("lower(name)")], unique=True)
    op.create_index("ix_repos_identity", "repos", ["type", "owner_id", sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("ix_repos_identity", table_name="repos")
    op.drop_index("ix_accounts_name_lower", table_name="accounts")
    op.drop_table("space_variables")
    op.drop_table("space_secrets")
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_builds_space_id"))

    op.drop_table("builds")
    op.drop_table("spaces")
    op.drop_table("likes")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_account_id"))

    op.drop_table("tokens")
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repos_owner_id"))

    op.drop_table("repos")
    op.drop_table("memberships")
    op.drop_table("accounts")
