"""mirror sync: per-object watermarks, sync mode and interval, Bulk query threshold, RTS secret

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import quotasync.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_state",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("sobject", sa.String(length=20), nullable=False),
        sa.Column("watermark", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.Column("last_run_at", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.Column("last_full_at", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_sync_state_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "sobject", name=op.f("pk_sync_state")),
    )
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("sync_mode", sa.String(length=10), server_default="interval", nullable=False)
        )
        batch.add_column(sa.Column("rts_secret_sealed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rts_setting_id", sa.String(length=18), nullable=True))
        batch.add_column(
            sa.Column("sync_interval_minutes", sa.Integer(), server_default="30", nullable=False)
        )
        batch.add_column(
            sa.Column("bulk_query_threshold", sa.Integer(), server_default="10000", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("bulk_query_threshold")
        batch.drop_column("sync_interval_minutes")
        batch.drop_column("rts_setting_id")
        batch.drop_column("rts_secret_sealed")
        batch.drop_column("sync_mode")
    op.drop_table("sync_state")
