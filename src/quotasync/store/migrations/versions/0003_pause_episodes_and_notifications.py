"""pause episodes and notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:14:29.542237
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import quotasync.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pause_episodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("api", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("started_at", quotasync.store.tables.UTCDateTime(), nullable=False),
        sa.Column("next_check", quotasync.store.tables.UTCDateTime(), nullable=False),
        sa.Column("resume_at", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.Column("ended_at", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_pause_episodes_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pause_episodes")),
    )
    op.create_index("ix_pause_episodes_open", "pause_episodes", ["workspace_id", "api", "ended_at"])

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("api", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=True),
        sa.Column("created_at", quotasync.store.tables.UTCDateTime(), nullable=False),
        sa.Column("sent_at", quotasync.store.tables.UTCDateTime(), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["pause_episodes.id"],
            name=op.f("fk_notifications_episode_id_pause_episodes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_notifications_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_notifications_key")),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_index("ix_pause_episodes_open", table_name="pause_episodes")
    op.drop_table("pause_episodes")
