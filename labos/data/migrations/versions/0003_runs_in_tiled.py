"""Schema 3: Bluesky documents move to tiled; the store keeps the lifecycle.

Runs are written by bluesky's ``TiledWriter`` into a tiled catalog
(:mod:`labos.data.runs`) instead of the store's own ``documents`` table. A store with
no documents loses the table; one with documents keeps them as ``legacy_documents``
until :func:`labos.data.runs.adopt_legacy_runs` has copied each run into tiled (on
resume or export), so nothing recorded before the upgrade is lost.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop the empty documents table, or keep its rows as ``legacy_documents``."""
    conn = op.get_bind()
    op.drop_index("documents_campaign", table_name="documents")
    op.drop_index("documents_run", table_name="documents")
    if conn.execute(sa.text("SELECT 1 FROM documents LIMIT 1")).fetchone() is None:
        op.drop_table("documents")
        return
    op.rename_table("documents", "legacy_documents")
    op.create_index("legacy_documents_run", "legacy_documents", ["campaign_id", "run_uid", "id"])
