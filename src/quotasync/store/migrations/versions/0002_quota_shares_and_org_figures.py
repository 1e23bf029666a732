"""quota shares and org figures

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 13:58:56.375668
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import quotasync.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_figures",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("api", sa.String(length=12), nullable=False),
        sa.Column("max", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("observed_at", quotasync.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_org_figures_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "api", name=op.f("pk_org_figures")),
    )
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("share_data", sa.Integer(), server_default="70", nullable=False)
        )
        batch_op.add_column(
            sa.Column("share_bulk", sa.Integer(), server_default="70", nullable=False)
        )
        batch_op.add_column(
            sa.Column("share_apex", sa.Integer(), server_default="70", nullable=False)
        )

    # Limits arrive with this revision: a workspace already connected was syncing before they
    # existed, and starts at 90% so nothing it did yesterday stops today.
    op.execute(
        "UPDATE workspaces SET share_data = 90, share_bulk = 90, share_apex = 90, "
        "synced_before_limits = true "
        "WHERE id IN (SELECT workspace_id FROM connections)"
    )


def downgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("share_apex")
        batch_op.drop_column("share_bulk")
        batch_op.drop_column("share_data")

    op.drop_table("org_figures")
