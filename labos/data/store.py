"""The embedded campaign store: one SQLite file holding every campaign's record.

Tables
------
campaigns
    One row per campaign run: the spec as validated, status, timestamps, provenance.
experiments
    One row per proposed experiment: parameters, planner, status
    (``proposed`` -> ``running`` -> ``ok`` | ``failed``; ``cancelled`` if the campaign
    ended before it started), metrics, objectives, error,
    the Bluesky run uids of every attempt and the instrument time taken.
documents
    Every Bluesky document of every run, in emission order.
events
    The decision log: proposals, starts, failures, what the planner was told, stops.
instruments, instrument_log
    The instrument registry (:mod:`labos.devices.registry`) and its maintenance log.

Every write is a single transaction, so a killed process leaves whole records only.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labos.core.errors import StoreError
from labos.data.jsonutil import dumps, loads

SCHEMA_VERSION = 1
STORE_FILENAME = "labos.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    spec TEXT NOT NULL,
    source TEXT,
    provenance TEXT NOT NULL,
    message TEXT
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
    UNIQUE (campaign_id, seq)
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL,
    run_uid TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_run ON documents(run_uid, id);
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


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment as stored."""

    id: str
    campaign_id: str
    seq: int
    planner: str
    params: dict[str, Any]
    status: str
    proposed: float
    started: float | None
    finished: float | None
    attempts: int
    run_uids: list[str]
    metrics: dict[str, float] | None
    objectives: dict[str, float] | None
    error: str | None
    instrument_time_s: float | None


@dataclass(frozen=True)
class CampaignRecord:
    """One campaign as stored."""

    id: str
    name: str
    status: str
    created: float
    finished: float | None
    spec: dict[str, Any]
    source: str | None
    provenance: dict[str, Any]
    message: str | None

    @property
    def effective_status(self) -> str:
        """``status``, except that a ``running`` campaign whose process is gone is ``interrupted``.

        Only decidable on the host that ran it; elsewhere ``running`` is reported as is.
        """
        if self.status != "running" or self.provenance.get("host") != platform.node():
            return self.status
        pid = self.provenance.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return self.status
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "interrupted"
        except PermissionError:  # alive, owned by someone else
            return self.status
        return self.status


def provenance() -> dict[str, Any]:
    """Where and with what a campaign ran."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("labos", "bluesky", "ophyd", "scikit-optimize", "prefect", "numpy", "torch"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return {"host": platform.node(), "python": platform.python_version(), "pid": os.getpid(), "versions": versions}


class Store:
    """The SQLite store of one data directory (thread-safe; one connection, one lock).

    Parameters
    ----------
    path
        The database file, or a directory to hold ``labos.sqlite``.
    """

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.suffix != ".sqlite":
            p = p / STORE_FILENAME
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(p, check_same_thread=False, isolation_level=None, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{p} was written by a newer labos (schema {version} > {SCHEMA_VERSION})")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the labos store {p}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create the labos store {p}: {exc.strerror}") from exc
        self.path = p
        self._lock = threading.RLock()

    # ----------------------------------------------------------- plumbing
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on error)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"writing to {self.path} failed: {exc}") from exc

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of a read query."""
        with self._lock:
            try:
                cur = self._conn.execute(sql, args)
                cur.row_factory = sqlite3.Row
                return list(cur.fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"reading {self.path} failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------- campaigns
    def create_campaign(self, campaign_id: str, name: str, spec: Mapping[str, Any], source: str | None) -> None:
        """Record a new campaign (status ``running``)."""
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "INSERT INTO campaigns (id, name, status, created, spec, source, provenance) VALUES (?,?,?,?,?,?,?)",
                (campaign_id, name, "running", now, dumps(spec), source, dumps(provenance())),
            )
            self._event(c, campaign_id, "campaign_started", None, {"name": name, "source": source}, now)

    def finish_campaign(self, campaign_id: str, status: str, message: str | None = None) -> None:
        """Mark a campaign ``completed``, ``stopped`` or ``failed``."""
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "UPDATE campaigns SET status=?, finished=?, message=? WHERE id=?", (status, now, message, campaign_id)
            )
            c.execute(
                "UPDATE experiments SET status='failed', error=?, finished=? WHERE campaign_id=? AND status='running'",
                (f"never completed: campaign {status}", now, campaign_id),
            )
            c.execute(
                "UPDATE experiments SET status='cancelled', error=?, finished=? "
                "WHERE campaign_id=? AND status='proposed'",
                (f"never started: campaign {status}", now, campaign_id),
            )
            self._event(c, campaign_id, "campaign_finished", None, {"status": status, "message": message}, now)

    def campaigns(self, name: str | None = None) -> list[CampaignRecord]:
        """Every campaign (optionally of one name), oldest first."""
        sql = "SELECT * FROM campaigns" + (" WHERE name=?" if name else "") + " ORDER BY created"
        return [self._campaign(r) for r in self.query(sql, (name,) if name else ())]

    def find_campaign(self, key: str) -> CampaignRecord | None:
        """A campaign by id, or the latest campaign of that name."""
        rows = self.query("SELECT * FROM campaigns WHERE id=?", (key,))
        if not rows:
            rows = self.query("SELECT * FROM campaigns WHERE name=? ORDER BY created DESC LIMIT 1", (key,))
        return self._campaign(rows[0]) if rows else None

    @staticmethod
    def _campaign(r: sqlite3.Row) -> CampaignRecord:
        return CampaignRecord(
            id=r["id"],
            name=r["name"],
            status=r["status"],
            created=r["created"],
            finished=r["finished"],
            spec=loads(r["spec"]),
            source=r["source"],
            provenance=loads(r["provenance"]),
            message=r["message"],
        )

    # --------------------------------------------------------- experiments
    def add_proposal(
        self, campaign_id: str, experiment_id: str, seq: int, planner: str, params: Mapping[str, Any]
    ) -> None:
        """Record a proposal (status ``proposed``)."""
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "INSERT INTO experiments (id, campaign_id, seq, planner, params, status, proposed) "
                "VALUES (?,?,?,?,?,?,?)",
                (experiment_id, campaign_id, seq, planner, dumps(params), "proposed", now),
            )
            self._event(c, campaign_id, "proposed", experiment_id, {"params": params, "planner": planner}, now)

    def start_attempt(self, campaign_id: str, experiment_id: str) -> int:
        """Mark an experiment ``running`` and count the attempt; returns the attempt number."""
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "UPDATE experiments SET status='running', started=COALESCE(started, ?), attempts=attempts+1 WHERE id=?",
                (now, experiment_id),
            )
            n = int(c.execute("SELECT attempts FROM experiments WHERE id=?", (experiment_id,)).fetchone()[0])
            self._event(c, campaign_id, "attempt_started", experiment_id, {"attempt": n}, now)
        return n

    def add_run_uid(self, experiment_id: str, run_uid: str) -> None:
        """Link a Bluesky run to an experiment."""
        with self.transaction() as c:
            row = c.execute("SELECT run_uids FROM experiments WHERE id=?", (experiment_id,)).fetchone()
            if row is None:
                raise StoreError(f"no experiment {experiment_id!r}")
            uids = loads(row[0])
            if run_uid not in uids:
                uids.append(run_uid)
            c.execute("UPDATE experiments SET run_uids=? WHERE id=?", (dumps(uids), experiment_id))

    def record_attempt_failure(self, campaign_id: str, experiment_id: str, error: str, will_retry: bool) -> None:
        """Log a failed attempt that may be retried."""
        with self.transaction() as c:
            self._event(
                c, campaign_id, "attempt_failed", experiment_id, {"error": error, "will_retry": will_retry}, time.time()
            )

    def record_result(
        self,
        campaign_id: str,
        experiment_id: str,
        *,
        status: str,
        metrics: Mapping[str, float] | None,
        objectives: Mapping[str, float] | None,
        error: str | None,
        instrument_time_s: float | None,
    ) -> None:
        """Record an experiment's final outcome (``ok`` or ``failed``) in one transaction."""
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "UPDATE experiments SET status=?, finished=?, metrics=?, objectives=?, error=?, instrument_time_s=? "
                "WHERE id=?",
                (
                    status,
                    now,
                    dumps(metrics) if metrics is not None else None,
                    dumps(objectives) if objectives is not None else None,
                    error,
                    instrument_time_s,
                    experiment_id,
                ),
            )
            payload = {"status": status, "objectives": objectives, "error": error}
            self._event(c, campaign_id, "result", experiment_id, payload, now)

    def log_event(
        self, campaign_id: str, kind: str, payload: Mapping[str, Any], experiment_id: str | None = None
    ) -> None:
        """Append a decision to the log."""
        with self.transaction() as c:
            self._event(c, campaign_id, kind, experiment_id, payload, time.time())

    @staticmethod
    def _event(
        c: sqlite3.Connection, campaign_id: str, kind: str, experiment_id: str | None, payload: Any, now: float
    ) -> None:
        c.execute(
            "INSERT INTO events (campaign_id, time, kind, experiment_id, payload) VALUES (?,?,?,?,?)",
            (campaign_id, now, kind, experiment_id, dumps(payload)),
        )

    def experiments(self, campaign_id: str) -> list[ExperimentRecord]:
        """The experiments of a campaign in order."""
        rows = self.query("SELECT * FROM experiments WHERE campaign_id=? ORDER BY seq", (campaign_id,))
        return [
            ExperimentRecord(
                id=r["id"],
                campaign_id=r["campaign_id"],
                seq=r["seq"],
                planner=r["planner"],
                params=loads(r["params"]),
                status=r["status"],
                proposed=r["proposed"],
                started=r["started"],
                finished=r["finished"],
                attempts=r["attempts"],
                run_uids=loads(r["run_uids"]),
                metrics=loads(r["metrics"]),
                objectives=loads(r["objectives"]),
                error=r["error"],
                instrument_time_s=r["instrument_time_s"],
            )
            for r in rows
        ]

    def events(self, campaign_id: str) -> list[dict[str, Any]]:
        """The decision log of a campaign in order."""
        rows = self.query("SELECT * FROM events WHERE campaign_id=? ORDER BY id", (campaign_id,))
        return [
            {
                "time": r["time"],
                "kind": r["kind"],
                "experiment_id": r["experiment_id"],
                "payload": loads(r["payload"]),
            }
            for r in rows
        ]

    # ----------------------------------------------------------- documents
    def add_document(self, campaign_id: str, run_uid: str, name: str, doc: Mapping[str, Any]) -> None:
        """Append one Bluesky document."""
        with self.transaction() as c:
            c.execute(
                "INSERT INTO documents (campaign_id, run_uid, name, doc) VALUES (?,?,?,?)",
                (campaign_id, run_uid, name, dumps(doc)),
            )

    def documents(self, run_uid: str) -> list[tuple[str, dict[str, Any]]]:
        """The ``(name, doc)`` pairs of one Bluesky run, in emission order."""
        rows = self.query("SELECT name, doc FROM documents WHERE run_uid=? ORDER BY id", (run_uid,))
        return [(r["name"], loads(r["doc"])) for r in rows]
