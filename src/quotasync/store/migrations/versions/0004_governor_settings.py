"""governor settings: recheck interval, warning threshold, /limits access; one open episode

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import quotasync.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("recheck_minutes", sa.Integer(), server_default="30", nullable=False)
        )
        batch.add_column(
            sa.Column("warning_percent", sa.Integer(), server_default="80", nullable=False)
        )
        batch.add_column(sa.Column("limits_readable", sa.Boolean(), nullable=True))
        batch.add_column(
            sa.Column("max_batch_delay", sa.Float(), server_default="300", nullable=False)
        )
        batch.add_column(
            sa.Column("limits_next_check", quotasync.store.tables.UTCDateTime(), nullable=True)
        )
    # Two workers may have opened two rows for one pause before this index existed: keep the
    # oldest open, end the others when they started (they were the same pause).
    op.execute(
        """
        UPDATE pause_episodes SET ended_at = started_at
        WHERE ended_at IS NULL AND id NOT IN (
            SELECT MIN(id) FROM pause_episodes WHERE ended_at IS NULL GROUP BY workspace_id, api
        )
        """
    )
    op.create_index(
        "uq_pause_episodes_one_open",
        "pause_episodes",
        ["workspace_id", "api"],
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_pause_episodes_one_open", table_name="pause_episodes")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("limits_next_check")
        batch.drop_column("max_batch_delay")
        batch.drop_column("limits_readable")
        batch.drop_column("warning_percent")
        batch.drop_column("recheck_minutes")
