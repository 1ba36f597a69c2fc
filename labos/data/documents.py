"""Reading Bluesky documents: the readings of one run, by stream."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from event_model import DocumentRouter, Event, EventDescriptor, RunStart, RunStop


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
