"""Human control of a running campaign: ask it to stop between experiments."""

from __future__ import annotations

import threading


class StopRequest:
    """A thread-safe flag a campaign loop checks before starting each experiment.

    Setting it never interrupts an experiment half-way: the running one finishes and
    is recorded, then the campaign ends with status ``stopped`` and the reason given.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        """Ask the campaign to stop, saying why (the first reason wins)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        """Whether a stop was requested."""
        return self._event.is_set()
