"""Schema 4: the instrument maintenance log records who made each change.

Earlier rows keep ``who`` empty: nobody recorded it then.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``instrument_log.who``."""
    with op.batch_alter_table("instrument_log") as t:
        t.add_column(sa.Column("who", sa.Text))
