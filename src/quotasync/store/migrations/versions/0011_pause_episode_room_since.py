"""pause_episodes: since when the room after a write has stayed comfortable (one episode per
sustained limit)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import quotasync.store.tables

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pause_episodes") as batch:
        batch.add_column(
            sa.Column("room_since", quotasync.store.tables.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("pause_episodes") as batch:
        batch.drop_column("room_since")
