"""Schema 2: the experiment lifecycle, attempts with causes, planner state and stop requests.

Schema 1 knew ``proposed``, ``running``, ``ok``, ``failed`` and ``cancelled`` and told
the planner every final outcome as it was recorded; its attempts are rebuilt from the
experiments' attempt counts and run uids.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the lifecycle columns and the attempts table, and carry schema-1 records over."""
    with op.batch_alter_table("campaigns") as t:
        t.add_column(sa.Column("planner_state", sa.Text))
        t.add_column(sa.Column("stop_request", sa.Text))
    with op.batch_alter_table("experiments") as t:
        t.add_column(sa.Column("cause", sa.Text))
        t.add_column(sa.Column("told", sa.Integer, nullable=False, server_default="0"))
        t.add_column(sa.Column("retry_at", sa.Double))
        t.add_column(sa.Column("traceback", sa.Text))
    op.create_table(
        "attempts",
        sa.Column("experiment_id", sa.Text, sa.ForeignKey("experiments.id"), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started", sa.Double, nullable=False),
        sa.Column("finished", sa.Double),
        sa.Column("run_uid", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("cause", sa.Text),
    )
    op.create_index("documents_campaign", "documents", ["campaign_id", "name"])
    op.execute("UPDATE experiments SET status='completed' WHERE status='ok'")
    op.execute("UPDATE experiments SET told=1 WHERE status IN ('completed', 'failed')")
    op.execute(
        "UPDATE experiments SET cause=CASE WHEN error LIKE 'analysis:%' THEN 'analysis' "
        "WHEN error LIKE 'never completed:%' THEN 'interrupted' ELSE 'instrument' END WHERE status='failed'"
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, status, attempts, run_uids, started, finished, error, cause FROM experiments")
    ).fetchall()
    insert = sa.text(
        "INSERT INTO attempts (experiment_id, n, status, started, finished, run_uid, error, cause) "
        "VALUES (:e, :n, :s, :t0, :t1, :uid, :err, :cause)"
    )
    for eid, status, attempts, run_uids, started, finished, error, cause in rows:
        uids = json.loads(run_uids)
        for n in range(1, int(attempts) + 1):
            last = n == attempts
            state = {"completed": "succeeded", "failed": "failed"}.get(status, "interrupted") if last else "failed"
            conn.execute(
                insert,
                {
                    "e": eid,
                    "n": n,
                    "s": state,
                    "t0": started or 0.0,
                    "t1": finished if last else None,
                    "uid": uids[n - 1] if n <= len(uids) else None,
                    "err": error if last else "an earlier attempt failed (schema 1 kept no details)",
                    "cause": cause if last else "instrument",
                },
            )


def downgrade() -> None:
    """Not supported: a store is never downgraded."""
    raise NotImplementedError("labos stores are not downgraded")
