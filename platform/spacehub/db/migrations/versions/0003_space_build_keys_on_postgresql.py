"""foreign keys from spaces to their builds where the first schema could not make them inline

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 06:40:00

The first schema declared spaces.current_build_id and spaces.live_build_id as foreign keys to be
added after both tables exist (spaces and builds refer to each other). SQLite writes them inline;
other databases need them added here. A no-op on SQLite.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEYS = {"fk_spaces_current_build": "current_build_id", "fk_spaces_live_build": "live_build_id"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for name, column in KEYS.items():
        op.create_foreign_key(name, "spaces", "builds", [column], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for name in KEYS:
        op.drop_constraint(name, "spaces", type_="foreignkey")
