"""discussions and pull requests, and their events

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:10:00
"""

import sqlalchemy as sa
from alembic import op

from spacehub.db.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "discussions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("repo_id", sa.Integer(), sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("num", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column(
            "author_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("is_pull_request", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("target_branch", sa.String(200), nullable=True),
        sa.Column("merge_commit", sa.String(40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_discussions_repo_num", "discussions", ["repo_id", "num"], unique=True)
    op.create_table(
        "discussion_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "discussion_id", sa.Integer(), sa.ForeignKey("discussions.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column(
            "author_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_discussion_events_discussion_id", "discussion_events", ["discussion_id"])


def downgrade() -> None:
    op.drop_table("discussion_events")
    op.drop_table("discussions")
