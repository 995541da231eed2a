"""the hub as an OpenID Connect provider: scoped, expiring tokens, consents, a signing key

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 11:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("scopes", sa.String(300), nullable=True))
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(), nullable=True))
    op.create_table(
        "oauth_consents",
        sa.Column(
            "account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "client_id", "scopes"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sealed_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("oauth_consents")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
