"""workspaces: batch_delay becomes log_within (the admin's freshness setting); 2 s becomes 60 s

The fixed 2-second batch delay was never anyone's choice: no page, API or command could set it,
so every workspace still at 2.0 simply has the old default. At 2 s a batch rarely held more than
one or two activities, and steady traffic cost about one API call per activity. Those rows get
the new default of 60 s, which gathers a minute's activities into each call; any other value was
set on purpose (by hand in the database) and is kept. A pacing ceiling below 60 s (an admin's
pick, at least the old 2 s) is raised to 60, as the ceiling is never below `log_within`.

New workspaces' ceiling (`max_batch_delay`) defaults to 900 s, the longest `log_within`, so an
admin may choose any `log_within` without raising the ceiling first; existing ceilings are
left as their admins have them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD_DEFAULT = 2.0
NEW_DEFAULT = 60.0


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.alter_column(
            "batch_delay",
            new_column_name="log_within",
            existing_type=sa.Float(),
            existing_nullable=False,
            server_default="60",
        )
        batch.alter_column(
            "max_batch_delay",
            existing_type=sa.Float(),
            existing_nullable=False,
            server_default="900",
        )
    update = sa.text(
        "UPDATE workspaces SET max_batch_delay = :new"
        " WHERE log_within = :old AND max_batch_delay < :new"
    )
    op.execute(update.bindparams(old=OLD_DEFAULT, new=NEW_DEFAULT))
    update = sa.text("UPDATE workspaces SET log_within = :new WHERE log_within = :old")
    op.execute(update.bindparams(old=OLD_DEFAULT, new=NEW_DEFAULT))


def downgrade() -> None:
    update = sa.text("UPDATE workspaces SET log_within = :old WHERE log_within = :new")
    op.execute(update.bindparams(old=OLD_DEFAULT, new=NEW_DEFAULT))
    with op.batch_alter_table("workspaces") as batch:
        batch.alter_column(
            "max_batch_delay",
            existing_type=sa.Float(),
            existing_nullable=False,
            server_default="300",
        )
        batch.alter_column(
            "log_within",
            new_column_name="batch_delay",
            existing_type=sa.Float(),
            existing_nullable=False,
            server_default=None,
        )
