"""Bluesky documents to and from the store: a writer callback and a reader of one run's readings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from event_model import DocumentRouter, Event, EventDescriptor, RunStart, RunStop

from labos.data.store import Store


class StoreWriter:
    """``f(name, doc)`` callback: every document of every run goes to the store as it arrives.

    Each document is its own transaction, so the store holds every document emitted
    before a crash; :meth:`labos.data.store.Store.recover` closes a run left open.
    """

    def __init__(self, store: Store, campaign_id: str) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self._desc_run: dict[str, str] = {}
        self.last_run: str | None = None
        """The uid of the latest run started."""

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Store one document."""
        if name == "start":
            self.last_run = doc["uid"]
        elif name == "descriptor":
            self._desc_run[doc["uid"]] = doc["run_start"]
        run = doc.get("run_start")
        if run is None and "descriptor" in doc:
            run = self._desc_run.get(doc["descriptor"])
        run = run or self.last_run
        if run is None:
            return
        self.store.add_document(self.campaign_id, run, name, doc)


class RunReadings(DocumentRouter):
    """The readings of one run, by stream: ``readings[stream]`` is a list of event ``data`` dicts.

    Event pages are unpacked into events by :class:`event_model.DocumentRouter`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """Forget the run read so far (a callback reused for the next run)."""
        self.start_doc: RunStart | None = None
        self.stop_doc: RunStop | None = None
        self.readings: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._streams: dict[str, str] = {}

    def start(self, doc: RunStart) -> None:
        """Keep the start document."""
        self.start_doc = doc

    def descriptor(self, doc: EventDescriptor) -> None:
        """Learn a stream's name."""
        self._streams[doc["uid"]] = doc.get("name", "primary")

    def event(self, doc: Event) -> Event:
        """Keep one event's data."""
        self.readings[self._streams[doc["descriptor"]]].append(dict(doc["data"]))
        return doc

    def stop(self, doc: RunStop) -> None:
        """Keep the stop document."""
        self.stop_doc = doc

    @classmethod
    def of(cls, documents: Iterable[tuple[str, dict[str, Any]]]) -> RunReadings:
        """Read a whole run from ``(name, doc)`` pairs."""
        out = cls()
        for name, doc in documents:
            out(name, doc)
        return out
