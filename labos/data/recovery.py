"""Recovery across the store and tiled after a crash, and legacy runs moved into tiled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labos.data.store import Store

from labos.data.runs import RunCatalog, read_journal


def adopt_legacy_runs(store: Store, catalog: RunCatalog, campaign_id: str) -> int:
    """Copy the runs a store of schema < 3 kept itself into tiled, then drop them from the store; their number.

    One run at a time, each written whole before it is dropped, so a process killed
    half-way loses nothing (the next call replaces a partial copy).
    """
    n = 0
    for uid, docs in store.legacy_runs(campaign_id).items():
        if docs and docs[0][0] == "start":  # a run is whole from its start document on
            catalog.import_run(docs)
            store.drop_legacy_run(uid)
            n += 1
    return n


def journaled_runs(journal: Path) -> list[Path]:
    """The journals in ``journal`` (runs that started before the catalog had opened), oldest first."""
    return sorted(journal.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)


def adopt_journaled_runs(catalog: RunCatalog, journals: list[Path]) -> int:
    """Write journaled runs into tiled whole (a partial earlier copy replaced), then remove each journal.

    Call it only while no process runs the campaign (it would be writing them itself).
    Returns how many runs were written.
    """
    n = 0
    for path in journals:
        docs = read_journal(path)
        if docs and docs[0][0] == "start":  # a journal is whole from its start document on
            catalog.import_run(docs)
            n += 1
        path.unlink()
    return n


def recover_campaign(
    store: Store,
    open_catalog: Callable[[], RunCatalog],
    campaign_id: str,
    on_interrupted: str,
    reason: str,
    journal: Path | None = None,
) -> dict[str, int]:
    """Close what a dead process left open: its Bluesky runs in tiled first, then the lifecycle in the store.

    ``open_catalog()`` gives the campaign's runs; it is called only if there is something
    to close (an attempt left running, legacy runs to copy, or runs in the ``journal``
    directory that never reached tiled: see :class:`~labos.data.runs.RunWriter`), so a
    campaign stopped between experiments resumes without waiting for tiled.

    Legacy runs (schema < 3) and journaled runs are copied into tiled first (a journal is
    removed once its run is written whole). Every run without a stop
    document gets one (``exit_status="abort"``, ``reason``); then
    :meth:`~labos.data.store.Store.recover` interrupts the attempts left running and
    links each to the run it had started. Each half is idempotent, so a process killed
    while recovering is recovered again. Returns the store's counts, with ``closed``:
    the runs closed here.
    """
    runs: list[tuple[str, Any, Any]] = []
    closed = 0
    journaled = journaled_runs(journal) if journal is not None else []
    if store.has_running_attempts(campaign_id) or store.legacy_runs(campaign_id) or journaled:
        catalog = open_catalog()
        adopt_legacy_runs(store, catalog, campaign_id)
        adopt_journaled_runs(catalog, journaled)
        for uid, md in catalog.runs():
            if not md.get("stop"):
                catalog.close_run(uid, reason)
                closed += 1
            start = md.get("start", {})
            runs.append((uid, start.get("experiment_id"), start.get("attempt")))
    return store.recover(campaign_id, on_interrupted, reason, runs) | {"closed": closed}
