"""The embedded campaign store: one SQLite file (WAL) holding every campaign's record.

The tables and their migrations are in :mod:`labos.data.schema`. Every method that
writes is one transaction, and every lifecycle move (:mod:`labos.core.lifecycle`) is
checked and written in the transaction that announces it, before the action itself:
a killed process leaves whole records that say what was under way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from labos.core.errors import StoreError
from labos.core.lifecycle import OUTCOMES, Cause, State, check_transition
from labos.data.db import Database, Row, Tx, is_url, redact
from labos.data.jsonutil import dumps, loads
from labos.data.queries import StoreReads
from labos.data.records import AttemptRecord, CampaignRecord, ExperimentRecord, provenance
from labos.data.schema import SCHEMA_VERSION, check_current, migrate

__all__ = [
    "SCHEMA_VERSION",
    "STORE_FILENAME",
    "AttemptRecord",
    "CampaignRecord",
    "ExperimentRecord",
    "Store",
    "provenance",
]

STORE_FILENAME = "labos.sqlite"
T = TypeVar("T")

_EXPERIMENT_FIELDS = frozenset(
    {"metrics", "objectives", "error", "cause", "instrument_time_s", "retry_at", "traceback", "finished"}
)
_JSON_FIELDS = frozenset({"metrics", "objectives"})


class Store(StoreReads):
    """The campaign store: an SQLite file in a data directory, or a PostgreSQL database (thread-safe).

    Parameters
    ----------
    target
        A directory (the store is ``<dir>/labos.sqlite``), an ``.sqlite`` file, or a
        database URL (``postgresql://user:password@host:port/db``, ``sqlite:///path``).
    read_only
        Only read it, writing nothing anywhere (``labos validate`` looking up the
        registry): the store must exist at the current schema; an SQLite file is opened
        read-only, or immutable when no other process has it open (no ``-wal`` file),
        so not even SQLite's side files are created.

    Raises
    ------
    StoreError
        If it cannot be opened, is not a labos store, is corrupt, or was written by a
        newer labos.
    """

    def __init__(self, target: str | Path, read_only: bool = False) -> None:
        self.path: Path | None = None
        if is_url(target):
            url = str(target)
            where = redact(url)
            if url.startswith("sqlite:///"):
                self.path = Path(url.removeprefix("sqlite:///"))
        else:
            p = Path(target)
            if p.suffix != ".sqlite":
                p = p / STORE_FILENAME
            if "\x00" in str(p):
                raise StoreError(f"cannot create the labos store {p!r}: the path contains a NUL byte")
            if read_only:
                if not p.is_file():
                    raise StoreError(f"no labos store at {p}")
                shared = Path(f"{p}-wal").exists()  # open elsewhere: read through its WAL, read-only
                url = f"sqlite:///file:{p.resolve()}?{'mode=ro' if shared else 'immutable=1'}&uri=true"
            else:
                try:
                    p.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the labos store {p}: {exc.strerror}") from exc
                url = f"sqlite:///{p}"
            self.path = p
            where = str(p)
        self.location: str | Path = self.path if self.path is not None else url
        """What to open the same store again with (a path, or the URL)."""
        self.db = Database(url, where, read_only)
        try:
            check_current(self.db) if read_only else migrate(self.db)
        except StoreError:
            self.db.close()
            raise
        except sa.exc.DBAPIError as exc:
            self.db.close()
            raise StoreError(f"cannot open the labos store {where}: {exc.orig}") from exc
        except BaseException:
            self.db.close()
            raise
        self._legacy = "legacy_documents" in sa.inspect(self.db.engine).get_table_names()

    # ----------------------------------------------------------- plumbing
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One write transaction (committed at the end, rolled back on error)."""
        with self.db.transaction() as tx:
            yield tx

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        """Rows of a read query (``?`` placeholders)."""
        return self.db.query(sql, args)

    def close(self) -> None:
        """Close the connections."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------- campaigns
    def create_campaign(
        self,
        campaign_id: str,
        name: str,
        spec: Mapping[str, Any],
        source: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a new campaign (status ``running``); ``extra`` joins the automatic provenance."""
        now = time.time()
        prov = provenance() | dict(extra or {})
        with self.transaction() as c:
            c.execute(
                "INSERT INTO campaigns (id, name, status, created, spec, source, provenance) VALUES (?,?,?,?,?,?,?)",
                (campaign_id, name, "running", now, dumps(spec), source, dumps(prov)),
            )
            self._event(c, campaign_id, "campaign_started", None, {"name": name, "source": source}, now)

    def reopen_campaign(self, campaign_id: str) -> None:
        """Mark a campaign ``running`` again in this process (a resume); clears its stop request."""
        now = time.time()
        prov = provenance()
        with self.transaction() as c:
            row = c.execute("SELECT provenance FROM campaigns WHERE id=?", (campaign_id,)).fetchone()
            if row is None:
                raise StoreError(f"no campaign {campaign_id!r}")
            old = loads(row[0])
            prov["resumes"] = [*old.get("resumes", []), {"time": now, "host": prov["host"], "pid": prov["pid"]}]
            prov = old | prov
            c.execute(
                "UPDATE campaigns SET status='running', finished=NULL, message=NULL, stop_request=NULL, provenance=? "
                "WHERE id=?",
                (dumps(prov), campaign_id),
            )
            self._event(c, campaign_id, "campaign_resumed", None, {"pid": prov["pid"], "host": prov["host"]}, now)

    def finish_campaign(self, campaign_id: str, status: str, message: str | None = None) -> None:
        """Mark a campaign ``completed``, ``stopped`` or ``failed``.

        Experiments still in the queue stay there (a stopped campaign can be resumed);
        only a ``completed`` campaign cancels what it will never run.
        """
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "UPDATE campaigns SET status=?, finished=?, message=? WHERE id=?", (status, now, message, campaign_id)
            )
            if status == "completed":
                for (eid,) in c.execute(
                    "SELECT id FROM experiments WHERE campaign_id=? AND status IN ('proposed','queued','approved')",
                    (campaign_id,),
                ).fetchall():
                    self._move(c, eid, State.CANCELLED, {"error": "never started: the campaign completed"}, now)
            self._event(c, campaign_id, "campaign_finished", None, {"status": status, "message": message}, now)

    def request_stop(self, campaign_id: str, reason: str) -> None:
        """Ask a running campaign to stop before its next experiment (the first reason wins)."""
        with self.transaction() as c:
            c.execute("UPDATE campaigns SET stop_request=COALESCE(stop_request, ?) WHERE id=?", (reason, campaign_id))
            self._event(c, campaign_id, "stop_requested", None, {"reason": reason}, time.time())

    def save_planner_state(self, campaign_id: str, state: Mapping[str, Any] | None) -> None:
        """Replace the stored planner state (normally written by :meth:`add_proposals` and :meth:`mark_told`)."""
        with self.transaction() as c:
            self._planner_state(c, campaign_id, state)

    # --------------------------------------------------------- experiments
    def add_proposals(
        self,
        campaign_id: str,
        proposals: Sequence[tuple[str, int, str, Mapping[str, Any]]],
        planner_state: Mapping[str, Any] | None,
        planner_log: Sequence[tuple[str, str | None, Mapping[str, Any]]] = (),
    ) -> None:
        """Record proposals ``(experiment_id, seq, planner, params)`` and the planner state that made them.

        ``planner_log`` holds what the planner reported about them, as ``(kind,
        experiment_id or None, payload)`` decision-log entries (an agent's exchanges with
        its model, each proposal's source and hypothesis). One transaction: a planner
        never believes it proposed something the store lacks.
        """
        now = time.time()
        with self.transaction() as c:
            self._insert_proposals(c, campaign_id, proposals, planner_state, planner_log, now)

    def _insert_proposals(
        self,
        c: Tx,
        campaign_id: str,
        proposals: Sequence[tuple[str, int, str, Mapping[str, Any]]],
        planner_state: Mapping[str, Any] | None,
        planner_log: Sequence[tuple[str, str | None, Mapping[str, Any]]],
        now: float,
    ) -> None:
        for eid, seq, planner, params in proposals:
            c.execute(
                "INSERT INTO experiments (id, campaign_id, seq, planner, params, status, proposed) "
                "VALUES (?,?,?,?,?,?,?)",
                (eid, campaign_id, seq, planner, dumps(params), State.PROPOSED.value, now),
            )
            self._event(c, campaign_id, "proposed", eid, {"params": params, "planner": planner}, now)
        for kind, about, payload in planner_log:
            self._event(c, campaign_id, kind, about, payload, now)
        self._planner_state(c, campaign_id, planner_state)

    def add_points(
        self,
        campaign_id: str,
        planner: str,
        points: Sequence[Mapping[str, Any]],
        planner_state: Mapping[str, Any] | None,
        planner_log: Callable[[list[str]], Sequence[tuple[str, str | None, Mapping[str, Any]]]] = lambda ids: (),
    ) -> list[str]:
        """Record what a planner proposed as new experiments, numbered in this transaction; their ids.

        The next numbers are read and taken in the transaction that inserts them (the
        write lock is held), so processes sharing a store never number two experiments
        alike. Ids are ``<campaign id>-<seq>`` (four digits at least). ``planner_log``
        turns the new ids into the decision-log entries of the ask (see :meth:`add_proposals`).
        """
        now = time.time()
        with self.transaction() as c:
            # SQLite's write lock is taken at BEGIN; PostgreSQL's READ COMMITTED needs the campaign's row locked
            # first, or two transactions read the same largest number
            c.execute("SELECT id FROM campaigns WHERE id=?" + self.db.for_update, (campaign_id,))
            row = c.execute("SELECT COALESCE(MAX(seq), 0) FROM experiments WHERE campaign_id=?", (campaign_id,)).one()
            first = int(row[0]) + 1
            rows = [(f"{campaign_id}-{first + i:04d}", first + i, planner, p) for i, p in enumerate(points)]
            ids = [r[0] for r in rows]
            self._insert_proposals(c, campaign_id, rows, planner_state, planner_log(ids), now)
        return ids

    def transition(self, experiment_id: str, target: State, **fields: Any) -> None:
        """Move an experiment to ``target``, setting ``fields`` (see :data:`_EXPERIMENT_FIELDS`).

        Raises
        ------
        IllegalTransition
            If the move is not allowed from the experiment's current state.
        """
        with self.transaction() as c:
            self._move(c, experiment_id, target, fields, time.time())

    def _move(self, c: Tx, experiment_id: str, target: State, fields: Mapping[str, Any], now: float) -> str:
        row = c.execute(
            "SELECT status, campaign_id FROM experiments WHERE id=?" + self.db.for_update, (experiment_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no experiment {experiment_id!r}")
        current, campaign_id = row
        check_transition(experiment_id, current, target)
        unknown = set(fields) - _EXPERIMENT_FIELDS
        if unknown:
            raise StoreError(f"not an experiment field: {', '.join(sorted(unknown))}")
        values = {k: dumps(v) if k in _JSON_FIELDS and v is not None else v for k, v in fields.items()}
        if target in {State.COMPLETED, State.FAILED, State.CANCELLED, State.REJECTED}:
            values.setdefault("finished", now)
        sets = ", ".join(f"{k}=?" for k in values)
        c.execute(
            f"UPDATE experiments SET status=?{', ' + sets if sets else ''} WHERE id=?",
            (target.value, *values.values(), experiment_id),
        )
        payload = {"from": current, "to": target.value} | {
            k: fields[k] for k in ("error", "cause", "objectives") if fields.get(k) is not None
        }
        self._event(c, campaign_id, "transition", experiment_id, payload, now)
        return str(campaign_id)

    def start_attempt(self, experiment_id: str) -> int:
        """``queued -> running`` and a new attempt row; returns the attempt number (1-based)."""
        now = time.time()
        with self.transaction() as c:
            campaign_id = self._move(c, experiment_id, State.RUNNING, {"retry_at": None}, now)
            c.execute(
                "UPDATE experiments SET started=COALESCE(started, ?), attempts=attempts+1 WHERE id=?",
                (now, experiment_id),
            )
            n = int(c.execute("SELECT attempts FROM experiments WHERE id=?", (experiment_id,)).one()[0])
            c.execute(
                "INSERT INTO attempts (experiment_id, n, status, started) VALUES (?,?,?,?)",
                (experiment_id, n, "running", now),
            )
            self._event(c, campaign_id, "attempt_started", experiment_id, {"attempt": n}, now)
        return n

    def end_attempt(
        self,
        experiment_id: str,
        n: int,
        *,
        target: State,
        run_uid: str | None,
        error: str | None = None,
        cause: Cause | None = None,
        instrument_time_s: float | None = None,
        retry_at: float | None = None,
        traceback: str | None = None,
        instruments: Sequence[str] | None = None,
    ) -> None:
        """Close attempt ``n`` and move its experiment (to ``measured``, ``failed`` or back to ``queued``).

        ``instruments``: those the attempt ran on (its lanes' reservations).
        """
        now = time.time()
        status = (
            "succeeded" if target == State.MEASURED else ("interrupted" if cause == Cause.INTERRUPTED else "failed")
        )
        with self.transaction() as c:
            fields: dict[str, Any] = {"instrument_time_s": instrument_time_s}
            if target == State.QUEUED:
                fields["retry_at"] = retry_at
            if target in {State.FAILED, State.INTERRUPTED}:
                fields |= {"error": error, "cause": cause.value if cause else None, "traceback": traceback}
            self._move(c, experiment_id, target, fields, now)
            c.execute(
                "UPDATE attempts SET status=?, finished=?, run_uid=?, error=?, cause=?, instruments=? "
                "WHERE experiment_id=? AND n=?",
                (
                    status,
                    now,
                    run_uid,
                    error,
                    cause.value if cause else None,
                    dumps(list(instruments)) if instruments is not None else None,
                    experiment_id,
                    n,
                ),
            )
            if run_uid is not None:
                self._add_run_uid(c, experiment_id, run_uid)

    def mark_told(
        self,
        campaign_id: str,
        experiment_ids: Sequence[str],
        planner_state: Mapping[str, Any] | None,
        planner_log: Sequence[tuple[str, str | None, Mapping[str, Any]]] = (),
    ) -> None:
        """The planner learned these outcomes: flag them and store its new state (one transaction).

        ``planner_log``: decision-log entries the planner reported while learning (an
        agent's verdicts on its hypotheses), as in :meth:`add_proposals`.
        """
        now = time.time()
        with self.transaction() as c:
            for eid in experiment_ids:
                c.execute("UPDATE experiments SET told=1 WHERE id=?", (eid,))
            self._planner_state(c, campaign_id, planner_state)
            self._event(c, campaign_id, "told", None, {"experiments": list(experiment_ids)}, now)
            for kind, about, payload in planner_log:
                self._event(c, campaign_id, kind, about, payload, now)

    def _planner_state(self, c: Tx, campaign_id: str, state: Mapping[str, Any] | None) -> None:
        """Store a planner's state: its journal appended row by row, the rest (and the journal's length) in the row.

        A journal only grows, so an ask or a tell writes its own entry, not every entry
        before it again (bytes per experiment stay flat however long the campaign). A
        journal shorter than the one stored (a planner started afresh) replaces it.
        """
        if state is None:
            return
        journal = state.get("journal")
        if not isinstance(journal, list):
            c.execute("UPDATE campaigns SET planner_state=? WHERE id=?", (dumps(state), campaign_id))
            return
        stored = int(c.execute("SELECT COUNT(*) FROM planner_journal WHERE campaign_id=?", (campaign_id,)).one()[0])
        if stored > len(journal):
            c.execute("DELETE FROM planner_journal WHERE campaign_id=?", (campaign_id,))
            stored = 0
        for n in range(stored, len(journal)):
            c.execute(
                "INSERT INTO planner_journal (campaign_id, n, entry) VALUES (?,?,?)",
                (campaign_id, n, dumps(journal[n])),
            )
        header = {k: v for k, v in state.items() if k != "journal"} | {"journal_rows": len(journal)}
        c.execute("UPDATE campaigns SET planner_state=? WHERE id=?", (dumps(header), campaign_id))

    @staticmethod
    def _add_run_uid(c: Tx, experiment_id: str, run_uid: str) -> None:
        uids = loads(c.execute("SELECT run_uids FROM experiments WHERE id=?", (experiment_id,)).one()[0])
        if run_uid not in uids:
            uids.append(run_uid)
        c.execute("UPDATE experiments SET run_uids=? WHERE id=?", (dumps(uids), experiment_id))

    def log_event(
        self, campaign_id: str, kind: str, payload: Mapping[str, Any], experiment_id: str | None = None
    ) -> None:
        """Append a decision to the log."""
        with self.transaction() as c:
            self._event(c, campaign_id, kind, experiment_id, payload, time.time())

    @staticmethod
    def _event(c: Tx, campaign_id: str, kind: str, experiment_id: str | None, payload: Any, now: float) -> None:
        c.execute(
            "INSERT INTO events (campaign_id, time, kind, experiment_id, payload) VALUES (?,?,?,?,?)",
            (campaign_id, now, kind, experiment_id, dumps(payload)),
        )

    # ------------------------------------------------------------ recovery
    def recover(
        self,
        campaign_id: str,
        on_interrupted: str,
        reason: str,
        runs: Sequence[tuple[str, Any, Any]] = (),
    ) -> dict[str, int]:
        """After the process running a campaign died: close what it left open, in one transaction.

        Every attempt left ``running`` becomes ``interrupted`` and each interrupted
        experiment is queued again (``on_interrupted="rerun"``: a new attempt of the same
        experiment) or failed (``"fail"``). ``measured`` experiments keep their state:
        their raw data is whole and only needs analysing. Idempotent.

        The Bluesky runs themselves are in tiled (:mod:`labos.data.runs`), where the
        caller has already closed the open ones; ``runs`` lists ``(run uid, experiment
        id, attempt)`` from their start documents, so an attempt that died before it
        recorded its run is linked to it here.

        Returns
        -------
        dict
            Counts: ``attempts`` interrupted, ``runs`` linked, ``requeued``, ``failed``.
        """
        now = time.time()
        counts = {"attempts": 0, "runs": 0, "requeued": 0, "failed": 0}
        with self.transaction() as c:
            running = c.execute(
                "SELECT a.experiment_id, a.n FROM attempts a JOIN experiments e ON a.experiment_id=e.id "
                "WHERE e.campaign_id=? AND a.status='running'",
                (campaign_id,),
            ).fetchall()
            open_attempts = {(eid, n) for eid, n in running}
            for run_uid, eid, n in runs:  # link each dead attempt to the run it started
                if (eid, n) in open_attempts:
                    c.execute(
                        "UPDATE attempts SET run_uid=COALESCE(run_uid, ?) WHERE experiment_id=? AND n=?",
                        (run_uid, eid, n),
                    )
                    self._add_run_uid(c, eid, run_uid)
                    counts["runs"] += 1
            for eid, n in running:
                c.execute(
                    "UPDATE attempts SET status='interrupted', finished=?, error=?, cause=? "
                    "WHERE experiment_id=? AND n=?",
                    (now, reason, Cause.INTERRUPTED.value, eid, n),
                )
                counts["attempts"] += 1
            for (eid,) in c.execute(
                "SELECT id FROM experiments WHERE campaign_id=? AND status=?", (campaign_id, State.RUNNING.value)
            ).fetchall():
                self._move(c, eid, State.INTERRUPTED, {"error": reason, "cause": Cause.INTERRUPTED.value}, now)
            for (eid,) in c.execute(
                "SELECT id FROM experiments WHERE campaign_id=? AND status=?", (campaign_id, State.INTERRUPTED.value)
            ).fetchall():
                if on_interrupted == "rerun":
                    self._move(c, eid, State.QUEUED, {"retry_at": None}, now)
                    counts["requeued"] += 1
                else:
                    self._move(c, eid, State.FAILED, {"error": reason, "cause": Cause.INTERRUPTED.value}, now)
                    counts["failed"] += 1
            self._event(c, campaign_id, "recovered", None, counts | {"reason": reason}, now)
        return counts

    def drop_legacy_run(self, run_uid: str) -> None:
        """Forget one legacy run's documents (once they are in tiled)."""
        with self.transaction() as c:
            c.execute("DELETE FROM legacy_documents WHERE run_uid=?", (run_uid,))


def store_target(data_dir: str | Path) -> str | Path:
    """Where the store of ``data_dir`` is: ``LABOS_STORE_URL`` if set, else ``<data_dir>/labos.sqlite``."""
    from labos.core.settings import Settings

    return Settings().store_url or Path(data_dir)


def open_store(data_dir: str | Path, must_exist: bool = False, read_only: bool = False) -> Store:
    """The store of ``data_dir`` (see :func:`store_target`); ``read_only`` writes nothing (and implies ``must_exist``).

    Raises
    ------
    StoreError
        With ``must_exist``, if there is no SQLite store in ``data_dir`` yet.
    """
    target = store_target(data_dir)
    if (must_exist or read_only) and not is_url(target) and not (Path(target) / STORE_FILENAME).exists():
        where = Path(target) / STORE_FILENAME
        raise StoreError(f"no labos store in {data_dir} (looked for {where}); pass --data-dir")
    return Store(target, read_only)


def outcome_told(record: ExperimentRecord) -> bool:
    """Whether the planner should be (or has been) told this experiment's outcome.

    Completed and failed experiments are, except failures caused by a software error:
    a bug is no evidence about the search space.
    """
    return State(record.status) in OUTCOMES and record.cause != Cause.SOFTWARE
