"""ledger answers' times, other apps' use as told, mirror account ids; RTS receipts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import quotasync.store.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(
            sa.Column("settled_at", quotasync.store.tables.UTCDateTime(), nullable=True)
        )
    # Calls already answered count as answered when they were made: the best that is known.
    op.execute("UPDATE ledger SET settled_at = at WHERE status IS NOT NULL")
    with op.batch_alter_table("org_figures") as batch:
        batch.add_column(
            sa.Column("others_used", sa.BigInteger(), server_default="0", nullable=False)
        )
    # Until the next reading, all of the org's use counts as other apps': the safe side.
    op.execute("UPDATE org_figures SET others_used = used")
    with op.batch_alter_table("mirror") as batch:
        batch.add_column(sa.Column("account_id", sa.String(length=18), nullable=True))
    # Filled from the mirrored fields, so the sidebar finds an account's deals by index.
    op.execute(
        "UPDATE mirror SET account_id = json_extract(fields, '$.AccountId')"
        if op.get_bind().dialect.name == "sqlite"
        else "UPDATE mirror SET account_id = fields::json->>'AccountId'"
    )
    op.create_index("ix_mirror_account", "mirror", ["workspace_id", "sobject", "account_id"])
    op.create_table(
        "rts_receipts",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("signature", sa.String(length=80), nullable=False),
        sa.Column("received_at", quotasync.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_rts_receipts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "signature", name=op.f("pk_rts_receipts")),
    )


def downgrade() -> None:
    op.drop_table("rts_receipts")
    op.drop_index("ix_mirror_account", table_name="mirror")
    with op.batch_alter_table("mirror") as batch:
        batch.drop_column("account_id")
    with op.batch_alter_table("org_figures") as batch:
        batch.drop_column("others_used")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("settled_at")
