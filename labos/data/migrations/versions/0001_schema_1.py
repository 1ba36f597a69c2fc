"""Schema 1: the store as labos wrote it before migrations (campaigns, experiments, documents, events, registry).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the schema-1 tables."""
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created", sa.Double, nullable=False),
        sa.Column("finished", sa.Double),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
    )
    op.create_index("campaigns_name", "campaigns", ["name", "created"])
    op.create_table(
        "experiments",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("planner", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("proposed", sa.Double, nullable=False),
        sa.Column("started", sa.Double),
        sa.Column("finished", sa.Double),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("run_uids", sa.Text, nullable=False, server_default="[]"),
        sa.Column("metrics", sa.Text),
        sa.Column("objectives", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("instrument_time_s", sa.Double),
        sa.UniqueConstraint("campaign_id", "seq"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("run_uid", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
    )
    op.create_index("documents_run", "documents", ["run_uid", "id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("experiment_id", sa.Text),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("events_campaign", "events", ["campaign_id", "id"])
    op.create_table(
        "instruments",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("enabled", sa.Integer, nullable=False, server_default="1"),
        sa.Column("reason", sa.Text),
        sa.Column("updated", sa.Double, nullable=False),
    )
    op.create_table(
        "instrument_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    """Not supported: a store is never downgraded."""
    raise NotImplementedError("labos stores are not downgraded")
