"""worker_leases: which worker steps a connected workspace, and when it is due again

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import quotasync.store.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_leases",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=True),
        sa.Column("expires_at", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.Column("due_at", quotasync.store.tables.UTCDateTime(), nullable=False),
        sa.Column("stepped_at", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.Column("woken_at", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_worker_leases_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_worker_leases")),
    )
    op.create_index("ix_worker_leases_due_at", "worker_leases", ["due_at"])
    # Every workspace connected before leases existed is due at once.
    op.execute(
        "INSERT INTO worker_leases (workspace_id, due_at) "
        "SELECT workspace_id, connected_at FROM connections"
    )


def downgrade() -> None:
    op.drop_index("ix_worker_leases_due_at", table_name="worker_leases")
    op.drop_table("worker_leases")
