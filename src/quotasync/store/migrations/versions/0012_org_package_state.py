"""workspaces: the last install or uninstall of quotasync's org package (`quotasync org install`,
the Integrations page's button): its outcome and when, so the page can say whether the package
is installed without asking the org on every view

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import quotasync.store.tables

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("org_package", sa.String(20), nullable=True))
        batch.add_column(
            sa.Column("org_package_at", quotasync.store.tables.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("org_package_detail", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("org_package_detail")
        batch.drop_column("org_package_at")
        batch.drop_column("org_package")
