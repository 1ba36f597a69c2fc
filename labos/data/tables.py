"""Flat tables of a campaign: one row per experiment and per attempt, as CSV or Parquet."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labos.data.records import AttemptRecord, ExperimentRecord


def iso_time(t: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC (``None`` stays ``None``)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds") if t is not None else None


def experiment_rows(exps: Sequence[ExperimentRecord]) -> list[dict[str, Any]]:
    """One flat row per experiment: ``param.*``, ``metric.*`` and ``objective.*`` columns."""
    rows = []
    for e in exps:
        row: dict[str, Any] = {
            "seq": e.seq,
            "experiment_id": e.id,
            "status": e.status,
            "cause": e.cause,
            "error": e.error,
            "attempts": e.attempts,
            "planner": e.planner,
            "proposed": iso_time(e.proposed),
            "started": iso_time(e.started),
            "finished": iso_time(e.finished),
            "instrument_time_s": e.instrument_time_s,
            "run_uids": " ".join(e.run_uids),
        }
        row |= {f"param.{k}": v for k, v in e.params.items()}
        row |= {f"metric.{k}": v for k, v in (e.metrics or {}).items()}
        row |= {f"objective.{k}": v for k, v in (e.objectives or {}).items()}
        rows.append(row)
    return rows


def attempt_rows(attempts: Sequence[AttemptRecord]) -> list[dict[str, Any]]:
    """One flat row per attempt."""
    return [
        {
            "experiment_id": a.experiment_id,
            "attempt": a.n,
            "status": a.status,
            "cause": a.cause,
            "error": a.error,
            "started": iso_time(a.started),
            "finished": iso_time(a.finished),
            "run_uid": a.run_uid,
        }
        for a in attempts
    ]


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return list(cols)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` to ``path`` as CSV (columns: every key seen, in order); returns ``path``."""
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=_columns(rows))
        w.writeheader()
        w.writerows(rows)
    return path


def write_parquet(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` to ``path`` as Parquet; returns ``path``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = _columns(rows)
    table = pa.table({c: [r.get(c) for r in rows] for c in cols}) if rows else pa.table({})
    pq.write_table(table, path)
    return path
