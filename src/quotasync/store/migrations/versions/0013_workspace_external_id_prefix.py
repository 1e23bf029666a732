"""workspaces: a prefix of each workspace's own for the external ids it writes, so that workspaces
sharing an org keep apart. Existing workspaces get none: their records were written under the bare
activity id, and a follow-up to an old email must still find its Task.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("external_id_prefix", sa.String(length=8), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_workspaces_external_id_prefix"), ["external_id_prefix"]
        )


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_constraint(op.f("uq_workspaces_external_id_prefix"), type_="unique")
        batch.drop_column("external_id_prefix")
