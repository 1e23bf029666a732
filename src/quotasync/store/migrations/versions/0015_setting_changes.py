"""setting_changes: who changed a workspace's share or governor setting, when, from what to what,
for the Integrations page's history.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setting_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=254), nullable=False),
        sa.Column("setting", sa.String(length=40), nullable=False),
        sa.Column("before", sa.String(length=40), nullable=True),
        sa.Column("after", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_setting_changes_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setting_changes")),
    )
    op.create_index("ix_setting_changes_workspace_at", "setting_changes", ["workspace_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_setting_changes_workspace_at", table_name="setting_changes")
    op.drop_table("setting_changes")
