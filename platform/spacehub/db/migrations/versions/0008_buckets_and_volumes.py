"""buckets, and the volumes a space mounts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "buckets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_buckets_owner_id", "buckets", ["owner_id"])
    op.create_index("ix_buckets_identity", "buckets", ["owner_id", sa.text("lower(name)")], unique=True)
    with op.batch_alter_table("spaces") as batch:
        batch.add_column(sa.Column("volumes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spaces") as batch:
        batch.drop_column("volumes")
    op.drop_index("ix_buckets_identity", "buckets")
    op.drop_index("ix_buckets_owner_id", "buckets")
    op.drop_table("buckets")
