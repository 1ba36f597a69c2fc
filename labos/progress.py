"""Follow a campaign through its store: what a progress bar, a dashboard or a remote client sees.

The loop reports nothing to anyone directly; whoever wants progress reads the store,
which is the one record of what happened (and works the same when the campaign runs
in another process or on another machine).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from labos.core.errors import StoreError
from labos.data.records import ExperimentRecord
from labos.data.reservations import reservations
from labos.data.store import Store


class StoreWatcher(threading.Thread):
    """A daemon thread calling ``on_finished(record)`` once for each experiment that reaches an outcome.

    Parameters
    ----------
    store_path
        The store file (the watcher opens its own connection).
    campaign_id
        The campaign to follow.
    on_finished
        Called with each newly ``completed`` or ``failed`` experiment, in the order seen.
    interval_s
        How often the store is read.
    seen
        Experiments not to report (those already finished when a resumed campaign starts).
    on_lanes
        Called at every poll with the instruments each experiment in flight holds now
        (``{experiment id: [instrument, ...]}``, from the store's reservations).
    """

    def __init__(
        self,
        store_path: str | Path,
        campaign_id: str,
        on_finished: Callable[[ExperimentRecord], None],
        interval_s: float = 0.2,
        seen: set[str] | None = None,
        on_lanes: Callable[[dict[str, list[str]]], None] | None = None,
    ) -> None:
        super().__init__(name=f"watch-{campaign_id}", daemon=True)
        self.store_path = store_path
        self.campaign_id = campaign_id
        self.on_finished = on_finished
        self.interval_s = interval_s
        self._done = threading.Event()
        self._seen: set[str] = set(seen or ())
        self.on_lanes = on_lanes

    def poll(self, store: Store) -> None:
        """Report what finished since the last poll."""
        for r in sorted(store.experiments(self.campaign_id), key=lambda r: (r.finished or 0.0, r.seq)):
            if r.status in ("completed", "failed") and r.id not in self._seen:
                self._seen.add(r.id)
                self.on_finished(r)
        if self.on_lanes is not None:
            held: dict[str, list[str]] = {}
            for res in reservations(store):
                if res.campaign_id == self.campaign_id:
                    held.setdefault(res.experiment_id, []).append(res.resource.removeprefix(f"{self.campaign_id}/"))
            self.on_lanes(held)

    def run(self) -> None:
        """Poll until :meth:`close`."""
        try:
            with Store(self.store_path) as store:
                while not self._done.wait(self.interval_s):
                    self.poll(store)
                self.poll(store)
        except StoreError:  # the store went away: nothing more to show
            return

    def close(self) -> None:
        """Stop after one last poll, and wait for it."""
        self._done.set()
        if self.is_alive():
            self.join(timeout=5.0)
