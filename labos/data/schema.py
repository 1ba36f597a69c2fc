"""The store's tables and the migrations between their versions.

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
documents
    Every Bluesky document of every run, in emission order.
events
    The decision log: proposals, transitions, failures, what the planner was told, stops.
instruments, instrument_log
    The instrument registry (:mod:`labos.devices.registry`) and its maintenance log.

A store records its schema version in ``PRAGMA user_version``. Opening an older store
applies each migration in :data:`MIGRATIONS` in order, each in one transaction, so a
store is always at a whole version.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 2

TABLES = """
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    spec TEXT NOT NULL,
    source TEXT,
    provenance TEXT NOT NULL,
    message TEXT,
    planner_state TEXT,
    stop_request TEXT
);
CREATE INDEX IF NOT EXISTS campaigns_name ON campaigns(name, created);
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    seq INTEGER NOT NULL,
    planner TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    proposed REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_uids TEXT NOT NULL DEFAULT '[]',
    metrics TEXT,
    objectives TEXT,
    error TEXT,
    instrument_time_s REAL,
    cause TEXT,
    told INTEGER NOT NULL DEFAULT 0,
    retry_at REAL,
    traceback TEXT,
    UNIQUE (campaign_id, seq)
);
CREATE TABLE IF NOT EXISTS attempts (
    experiment_id TEXT NOT NULL REFERENCES experiments(id),
    n INTEGER NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    run_uid TEXT,
    error TEXT,
    cause TEXT,
    PRIMARY KEY (experiment_id, n)
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL,
    run_uid TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_run ON documents(run_uid, id);
CREATE INDEX IF NOT EXISTS documents_campaign ON documents(campaign_id, name);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    experiment_id TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_campaign ON events(campaign_id, id);
CREATE TABLE IF NOT EXISTS instruments (
    name TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    reason TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS instrument_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    time REAL NOT NULL,
    action TEXT NOT NULL,
    detail TEXT
);
"""


def create_tables(c: sqlite3.Connection) -> None:
    """Create every missing table and index, inside the caller's transaction.

    (``executescript`` would commit the transaction first, so statements run one by one.)
    """
    for statement in TABLES.split(";"):
        if statement.strip():
            c.execute(statement)


def _v1_to_v2(c: sqlite3.Connection) -> None:
    """Lifecycle states, attempts, causes, planner state and stop requests.

    Version 1 knew ``proposed``, ``running``, ``ok``, ``failed`` and ``cancelled`` and
    told the planner every final outcome as it was recorded.
    """
    for table, column in (
        ("campaigns", "planner_state TEXT"),
        ("campaigns", "stop_request TEXT"),
        ("experiments", "cause TEXT"),
        ("experiments", "told INTEGER NOT NULL DEFAULT 0"),
        ("experiments", "retry_at REAL"),
        ("experiments", "traceback TEXT"),
    ):
        c.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    c.execute("UPDATE experiments SET status='completed' WHERE status='ok'")
    c.execute("UPDATE experiments SET told=1 WHERE status IN ('completed', 'failed')")
    c.execute(
        "UPDATE experiments SET cause=CASE WHEN error LIKE 'analysis:%' THEN 'analysis' "
        "WHEN error LIKE 'never completed:%' THEN 'interrupted' ELSE 'instrument' END WHERE status='failed'"
    )
    create_tables(c)  # the new tables and indexes
    rows = c.execute("SELECT id, status, attempts, run_uids, started, finished, error, cause FROM experiments")
    for eid, status, attempts, run_uids, started, finished, error, cause in rows.fetchall():
        uids = json.loads(run_uids)
        for n in range(1, int(attempts) + 1):
            last = n == attempts
            state = {"completed": "succeeded", "failed": "failed"}.get(status, "interrupted") if last else "failed"
            c.execute(
                "INSERT INTO attempts (experiment_id, n, status, started, finished, run_uid, error, cause) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (
                    eid,
                    n,
                    state,
                    started or 0.0,
                    finished if last else None,
                    uids[n - 1] if n <= len(uids) else None,
                    error if last else "an earlier attempt failed (version 1 kept no details)",
                    cause if last else "instrument",
                ),
            )


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}
"""``{from_version: migration}``: each brings a store from that version to the next."""
