"""The store's schema: Alembic revisions in :mod:`labos.data.migrations`, applied when a store opens.

Tables
------
campaigns
    One row per campaign: the spec as validated, status, timestamps, provenance, the
    planner's latest state (written in the same transaction as what changed it) and a
    stop request, if any.
experiments
    One row per proposed experiment: parameters, planner, lifecycle state
    (:mod:`labos.core.lifecycle`), metrics, objectives, the error and its cause, whether
    the planner has been told the outcome, and when a retry is due.
attempts
    One row per attempt of an experiment: its state, Bluesky run, error and cause.
legacy_documents
    Only in stores upgraded from schema 2 with documents: the Bluesky documents labos
    kept itself before runs moved to tiled (:mod:`labos.data.runs`), until they are
    copied there.
events
    The decision log: proposals, transitions, failures, what the planner was told, stops.
instruments, instrument_log
    The instrument registry (:mod:`labos.data.registry`) and its maintenance log (who, when, what).
reservations, reservation_requests
    Which experiment holds which instrument until when (a lease with a holder), and who
    waits for which instruments with what priority (:mod:`labos.data.reservations`).

Revision ``0001`` is the schema labos wrote before it had migrations (SQLite stores with
``PRAGMA user_version = 1`` and no ``alembic_version`` table); such a store is stamped
``0001`` and upgraded. The whole upgrade runs in one transaction, so a store is always
at a whole revision, and two processes opening one store never both migrate it.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from labos.core.errors import StoreError
from labos.data.db import Database

REVISIONS = ("0001", "0002", "0003", "0004", "0005")
HEAD = REVISIONS[-1]
SCHEMA_VERSION = len(REVISIONS)
"""The schema version this labos writes (the number of revisions)."""


def _current(conn: sa.Connection, where: str) -> tuple[str | None, bool]:
    """The store's revision (None if empty) and whether it predates migrations."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in tables:
        row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).fetchone()
        return (str(row[0]) if row else None), False
    if not tables:
        return None, False
    if {"campaigns", "experiments"} <= tables and conn.dialect.name == "sqlite":
        version = int(conn.exec_driver_sql("PRAGMA user_version").fetchone()[0])  # type: ignore[index]
        if version == 1:
            return "0001", True
        if version > 1:
            raise StoreError(f"{where} was written by a newer labos (schema {version}): upgrade labos to read it")
    raise StoreError(f"{where} is a database but not a labos store (tables: {', '.join(sorted(tables))})")


def check_current(db: Database) -> None:
    """Check, without writing, that the store is a labos store at :data:`HEAD` (for read-only use).

    Raises
    ------
    StoreError
        If it is not a labos store, is empty, or is at another schema revision.
    """
    with db.engine.connect().execution_options(labos_read=True) as conn:
        current, _ = _current(conn, db.where)
        conn.rollback()
    if current != HEAD:
        raise StoreError(
            f"{db.where} is at schema revision {current or '(empty)'}, not {HEAD}: "
            "open it once with a labos command that writes (labos instruments list) to upgrade it"
        )


def migrate(db: Database) -> None:
    """Bring the store to :data:`HEAD` (creating it if empty), in one transaction.

    Raises
    ------
    StoreError
        If the database is not a labos store, or was written by a newer labos.
    """
    with db.engine.begin() as conn:  # on SQLite: BEGIN IMMEDIATE, so migrations are serialised
        current, legacy = _current(conn, db.where)
        if current == HEAD:
            return
        if current is not None and current not in REVISIONS:
            raise StoreError(
                f"{db.where} was written by a newer labos (schema revision {current}; this labos knows up to "
                f"{HEAD}): upgrade labos to read it"
            )
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        if legacy:
            command.stamp(cfg, "0001")
        command.upgrade(cfg, HEAD)
