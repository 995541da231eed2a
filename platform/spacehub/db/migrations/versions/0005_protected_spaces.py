"""protected spaces: the app public, the repository private

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("spaces", sa.Column("protected", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("spaces") as batch:
        batch.drop_column("protected")
