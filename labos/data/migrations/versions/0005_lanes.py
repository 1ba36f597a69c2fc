"""Schema 5: lanes — campaign ownership leases, instrument reservations, the instruments of each attempt.

``campaigns.owner``/``owner_expires``: the process running a campaign holds a lease on its
row, renewed by a heartbeat, so two machines sharing one store cannot both run it.
``reservations``: which experiment holds which instrument, until when (a lease), and
``revoked``: why an operator asked for the work on it to be aborted.
``reservation_requests``: who waits for which instruments, with the campaign's priority.
``attempts.instruments``: the instruments an attempt ran on (JSON list).
``planner_journal``: a planner's journal of ``ask``/``tell`` calls, one row per entry,
appended as it grows (``campaigns.planner_state`` keeps the rest of the state and the
journal's length), instead of the whole journal rewritten at every ask and tell.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the ownership columns, the reservation tables and ``attempts.instruments``."""
    with op.batch_alter_table("campaigns") as t:
        t.add_column(sa.Column("owner", sa.Text))
        t.add_column(sa.Column("owner_expires", sa.Double))
    with op.batch_alter_table("attempts") as t:
        t.add_column(sa.Column("instruments", sa.Text))
    op.create_table(
        "reservations",
        sa.Column("resource", sa.Text, primary_key=True),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("experiment_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("acquired", sa.Double, nullable=False),
        sa.Column("expires", sa.Double, nullable=False),
        sa.Column("revoked", sa.Text),
    )
    op.create_index("reservations_owner", "reservations", ["owner"])
    op.create_table(
        "planner_journal",
        sa.Column("campaign_id", sa.Text, primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("entry", sa.Text, nullable=False),
    )
    op.create_table(
        "reservation_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("experiment_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("since", sa.Double, nullable=False),
        sa.Column("expires", sa.Double, nullable=False),
        sa.Column("wants", sa.Text, nullable=False),
    )
