"""Bluesky callbacks that write documents to the store and keep a run's readings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from labos.data.store import Store


class StoreWriter:
    """``f(name, doc)`` callback: every document of every run goes to the store as it arrives."""

    def __init__(self, store: Store, campaign_id: str) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self._desc_run: dict[str, str] = {}
        self._run: str | None = None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Store one document."""
        if name == "start":
            self._run = doc["uid"]
        elif name == "descriptor":
            self._desc_run[doc["uid"]] = doc["run_start"]
        run = doc.get("run_start")
        if run is None and "descriptor" in doc:
            run = self._desc_run.get(doc["descriptor"])
        run = run or self._run
        if run is None:
            return
        self.store.add_document(self.campaign_id, run, name, doc)


class RunCapture:
    """``f(name, doc)`` callback keeping the readings of the latest run, by stream.

    ``readings[stream]`` is a list of event ``data`` dicts; ``start`` and ``stop`` are
    the run's start and stop documents.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the previous run."""
        self.start: dict[str, Any] | None = None
        self.stop: dict[str, Any] | None = None
        self.readings: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._streams: dict[str, str] = {}

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Keep one document's readings."""
        if name == "start":
            self.reset()
            self.start = doc
        elif name == "descriptor":
            self._streams[doc["uid"]] = doc.get("name", "primary")
        elif name == "event":
            self.readings[self._streams[doc["descriptor"]]].append(doc["data"])
        elif name == "event_page":
            stream = self._streams[doc["descriptor"]]
            keys = list(doc["data"])
            n = len(doc["seq_num"])
            for i in range(n):
                self.readings[stream].append({k: doc["data"][k][i] for k in keys})
        elif name == "stop":
            self.stop = doc
