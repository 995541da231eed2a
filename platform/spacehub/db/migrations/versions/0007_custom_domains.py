"""custom domains: a space's own domain for its app

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 11:25:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spaces") as batch:
        batch.add_column(sa.Column("custom_domain", sa.String(253), nullable=True))
        batch.create_unique_constraint("uq_spaces_custom_domain", ["custom_domain"])


def downgrade() -> None:
    with op.batch_alter_table("spaces") as batch:
        batch.drop_constraint("uq_spaces_custom_domain", type_="unique")
        batch.drop_column("custom_domain")
