"""Reading the campaign store: campaigns, experiments, attempts, events (no writes here).

:class:`StoreReads` is the read half of :class:`~labos.data.store.Store`; every read is
one deferred (shared) transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any, TypeVar

from labos.core.errors import StoreError
from labos.data.db import Database, Row
from labos.data.jsonutil import loads
from labos.data.records import AttemptRecord, CampaignRecord, ExperimentRecord

T = TypeVar("T")
_JSON_FIELDS = frozenset({"metrics", "objectives"})


def record(cls: type[T], r: Row, json_fields: Collection[str] = (), flags: Collection[str] = ()) -> T:
    """A record dataclass from a row of its table: JSON columns decoded, integer flags as booleans."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # T is a dataclass type
        v = r[f.name]
        values[f.name] = loads(v) if f.name in json_fields else (bool(v) if f.name in flags else v)
    return cls(**values)


class StoreReads:
    """Queries of the campaign store (mixed into :class:`~labos.data.store.Store`)."""

    db: Database
    _legacy: bool
    """Whether the store still has a ``legacy_documents`` table (schema < 3 runs not yet in tiled)."""

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        """Rows of a read-only SQL query (a deferred transaction)."""
        raise NotImplementedError

    def campaigns(self, name: str | None = None) -> list[CampaignRecord]:
        """Every campaign (optionally of one name), oldest first."""
        sql = "SELECT * FROM campaigns" + (" WHERE name=?" if name else "") + " ORDER BY created"
        return [self._campaign(r) for r in self.query(sql, (name,) if name else ())]

    def campaign(self, campaign_id: str) -> CampaignRecord:
        """One campaign by id.

        Raises
        ------
        StoreError
            If there is none.
        """
        rows = self.query("SELECT * FROM campaigns WHERE id=?", (campaign_id,))
        if not rows:
            raise StoreError(f"no campaign {campaign_id!r} in {self.db.where}")
        return self._campaign(rows[0])

    def find_campaign(self, key: str) -> CampaignRecord | None:
        """A campaign by id, or the latest campaign of that name."""
        rows = self.query("SELECT * FROM campaigns WHERE id=?", (key,))
        if not rows:
            rows = self.query("SELECT * FROM campaigns WHERE name=? ORDER BY created DESC LIMIT 1", (key,))
        return self._campaign(rows[0]) if rows else None

    @staticmethod
    def _campaign(r: Row) -> CampaignRecord:
        """The campaign's row (its ``planner_state`` without the journal rows: see :meth:`planner_state`)."""
        return record(CampaignRecord, r, json_fields={"spec", "provenance", "planner_state"})

    def planner_state(self, campaign_id: str) -> dict[str, Any] | None:
        """The planner's whole stored state, its journal read back from its rows."""
        rows = self.query("SELECT planner_state FROM campaigns WHERE id=?", (campaign_id,))
        state = loads(rows[0][0]) if rows else None
        if isinstance(state, dict) and "journal_rows" in state:  # the journal is kept row by row
            entries = self.query("SELECT entry FROM planner_journal WHERE campaign_id=? ORDER BY n", (campaign_id,))
            journal = [loads(e[0]) for e in entries[: int(state["journal_rows"])]]
            state = {k: v for k, v in state.items() if k != "journal_rows"} | {"journal": journal}
        return state if isinstance(state, dict) else None

    def experiments(self, campaign_id: str) -> list[ExperimentRecord]:
        """The experiments of a campaign in order."""
        rows = self.query("SELECT * FROM experiments WHERE campaign_id=? ORDER BY seq", (campaign_id,))
        return [self._experiment(r) for r in rows]

    def experiment(self, experiment_id: str) -> ExperimentRecord:
        """One experiment by id."""
        rows = self.query("SELECT * FROM experiments WHERE id=?", (experiment_id,))
        if not rows:
            raise StoreError(f"no experiment {experiment_id!r}")
        return self._experiment(rows[0])

    @staticmethod
    def _experiment(r: Row) -> ExperimentRecord:
        return record(ExperimentRecord, r, json_fields={"params", "run_uids", "metrics", "objectives"}, flags={"told"})

    def attempts(self, campaign_id: str) -> list[AttemptRecord]:
        """Every attempt of a campaign's experiments, by experiment and number."""
        rows = self.query(
            "SELECT a.* FROM attempts a JOIN experiments e ON a.experiment_id=e.id "
            "WHERE e.campaign_id=? ORDER BY e.seq, a.n",
            (campaign_id,),
        )
        return [record(AttemptRecord, r, json_fields={"instruments"}) for r in rows]

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

    def has_running_attempts(self, campaign_id: str) -> bool:
        """Whether a process died (or is) running an attempt of this campaign."""
        return bool(
            self.query(
                "SELECT 1 FROM attempts a JOIN experiments e ON a.experiment_id=e.id "
                "WHERE e.campaign_id=? AND a.status='running' LIMIT 1",
                (campaign_id,),
            )
        )

    # ------------------------------------------------- legacy documents
    def legacy_runs(self, campaign_id: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """Documents a labos before tiled kept in its own table (schema < 3), by run, in emission order."""
        if not self._legacy:
            return {}
        rows = self.query(
            "SELECT run_uid, name, doc FROM legacy_documents WHERE campaign_id=? ORDER BY id", (campaign_id,)
        )
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for r in rows:
            out.setdefault(r["run_uid"], []).append((r["name"], loads(r["doc"])))
        return out
