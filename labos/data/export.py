"""Export a campaign in open formats: flat tables (CSV, Parquet) and an RO-Crate with provenance.

The tables keep every experiment, failed ones included, with the cause of each failure,
and every attempt. The RO-Crate follows the Provenance Run Crate profile (version 0.5,
the one ``roc-validator`` knows): the campaign spec is the workflow, each workflow step
a ``HowToStep`` naming its instrument, each attempt a ``CreateAction`` (instrument: the
lab's instruments; object: the parameters; result: the attempt's Bluesky documents and
the derived metrics; ``actionStatus`` and ``error`` for failures), each proposal a
``CreateAction`` of the planner, and labos as the engine's ``OrganizeAction``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from labos.core.errors import LabosError
from labos.data.records import AttemptRecord, CampaignRecord, ExperimentRecord
from labos.data.rocrate import write_rocrate
from labos.data.store import Store
from labos.data.tables import attempt_rows, experiment_rows, write_csv, write_parquet

FORMATS = ("csv", "parquet", "rocrate")


def export_campaign(store: Store, key: str, fmt: str, out: Path, data_dir: Path | None = None) -> list[Path]:
    """Write campaign ``key`` (an id, or the latest of that name) to ``out`` in ``fmt``; the files written.

    The RO-Crate includes every attempt's Bluesky documents, read from the campaign's
    runs in tiled (:class:`~labos.data.runs.RunCatalog` of ``data_dir``).

    Raises
    ------
    LabosError
        Unknown campaign or format, or ``out`` cannot be written.
    """
    if fmt not in FORMATS:
        raise LabosError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    rec = store.find_campaign(key)
    if rec is None:
        raise LabosError(f"no campaign {key!r} in {store.db.where}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabosError(f"cannot create {out}: {exc.strerror}") from None
    exps = store.experiments(rec.id)
    attempts = store.attempts(rec.id)
    if fmt == "csv":
        return [
            write_csv(experiment_rows(exps), out / "experiments.csv"),
            write_csv(attempt_rows(attempts), out / "attempts.csv"),
        ]
    if fmt == "parquet":
        return [
            write_parquet(experiment_rows(exps), out / "experiments.parquet"),
            write_parquet(attempt_rows(attempts), out / "attempts.parquet"),
        ]
    from labos.data.lock import CampaignLock
    from labos.data.recovery import adopt_journaled_runs, adopt_legacy_runs, journaled_runs
    from labos.data.runs import RunCatalog, journal_dir

    if not any(a.run_uid for a in attempts):
        return [_crate(store, rec, exps, attempts, out, lambda uid: [])]
    where = data_dir or Path("labos-data")
    with RunCatalog.open(where, rec.id) as runs:
        adopt_legacy_runs(store, runs, rec.id)  # runs recorded before they moved to tiled, if any
        if not CampaignLock(where, rec.id).held_elsewhere():  # a running campaign writes its journal itself
            adopt_journaled_runs(runs, journaled_runs(journal_dir(where, rec.id)))  # left by a killed process
        return [_crate(store, rec, exps, attempts, out, runs.documents)]


def _crate(
    store: Store,
    rec: CampaignRecord,
    exps: Sequence[ExperimentRecord],
    attempts: Sequence[AttemptRecord],
    out: Path,
    documents: Callable[[str], list[tuple[str, dict[str, Any]]]],
) -> Path:
    with tempfile.TemporaryDirectory(prefix="labos-crate-") as stage:
        return write_rocrate(store, rec, exps, attempts, Path(stage), out, documents)
