"""A simulated clock: realistic durations, accelerated wall-clock time, instruments that act at once.

Simulated time is not one counter that every action adds to: instruments that act at the
same time overlap. Each simulated instrument keeps a *timeline* (:class:`Timeline`): an
action starts when both the instrument and its sample are free (the end of the
instrument's previous action, and the end of the last action on that sample), and each
wait moves that timeline on by its duration. The clock's :meth:`SimClock.now` is the
frontier: the latest simulated time any action has reached. Four furnaces annealing for
an hour each take one simulated hour, not four; the times are a function of the
durations and of the order in which the instruments were granted to experiments (the
schedule), not of how the threads happened to interleave, so a seeded campaign with the
same schedule records the same times, at any acceleration, ``math.inf`` included.
"""

from __future__ import annotations

import math
import threading
import time


class Halted(Exception):
    """A :meth:`SimClock.sleep` cut short by its halt event (an instrument's ``stop()``).

    ``elapsed`` is the simulated time that passed before the halt.
    """

    def __init__(self, elapsed: float) -> None:
        super().__init__(f"halted after {elapsed:.1f} simulated s")
        self.elapsed = elapsed


class SimClock:
    """Simulated time that runs ``acceleration`` times faster than the wall clock.

    A wait of ``dt`` simulated seconds sleeps ``dt / acceleration`` real seconds
    (never, when ``acceleration`` is infinite), so recorded durations stay realistic
    while tests take milliseconds. Concurrent waits overlap: they are on the timelines
    of the instruments that wait (see the module's description); :meth:`sleep` is one
    timeline of its own, the clock's frontier.

    Parameters
    ----------
    acceleration
        Simulated seconds per wall-clock second (> 0; ``math.inf`` never sleeps).
    start
        Simulated epoch time at creation (defaults to the wall clock).
    """

    def __init__(self, acceleration: float = 1.0, start: float | None = None) -> None:
        if not acceleration > 0:
            raise ValueError(f"acceleration must be > 0, got {acceleration}")
        self.acceleration = acceleration
        self.start = time.time() if start is None else start
        self._t = self.start
        self._lock = threading.Lock()

    def now(self) -> float:
        """The frontier: the latest simulated time any action has reached (seconds since the epoch)."""
        with self._lock:
            return self._t

    def reach(self, t: float) -> None:
        """An action has reached simulated time ``t``: the frontier moves up to it (never back)."""
        with self._lock:
            self._t = max(self._t, t)

    def wait(self, dt: float, halt: threading.Event | None = None) -> None:
        """Pass ``dt`` simulated seconds of wall-clock time (``dt / acceleration``), unless ``halt`` is set first.

        Moves no timeline: the caller's does (:meth:`Timeline.wait`).

        Raises
        ------
        Halted
            When ``halt`` is (or becomes) set, with the simulated time that passed.
        """
        if dt < 0 or not math.isfinite(dt):
            raise ValueError(f"cannot sleep for {dt} s")
        if halt is not None and halt.is_set():
            raise Halted(0.0)
        if math.isfinite(self.acceleration):
            start = time.monotonic()
            if halt is None:
                time.sleep(dt / self.acceleration)
            elif halt.wait(dt / self.acceleration):
                raise Halted(min((time.monotonic() - start) * self.acceleration, dt))

    def sleep(self, dt: float, halt: threading.Event | None = None) -> None:
        """Let ``dt`` simulated seconds pass on the frontier's own timeline, unless ``halt`` is set first.

        Raises
        ------
        Halted
            When ``halt`` is (or becomes) set; the simulated time up to then has passed.
        """
        try:
            self.wait(dt, halt)
        except Halted as halted:
            with self._lock:
                self._t += halted.elapsed
            raise
        with self._lock:
            self._t += dt


class Timeline:
    """One instrument's own simulated time: where its current action is, and when it is free again.

    Parameters
    ----------
    clock
        The world's clock (its acceleration paces the waits; its frontier learns every end).
    """

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.free_at = clock.start
        self.t = clock.start
        """Where the current action is in simulated time (between actions: when the last one ended)."""

    def begin(self, after: float | None = None) -> float:
        """Start an action no earlier than the instrument is free and than ``after``; its start time."""
        self.t = max(self.free_at, after if after is not None else self.free_at)
        return self.t

    def wait(self, dt: float, halt: threading.Event | None = None) -> float:
        """Let ``dt`` simulated seconds of the current action pass; the time reached.

        Raises
        ------
        Halted
            When ``halt`` is set first; the timeline has moved on by the time that passed.
        """
        try:
            self.clock.wait(dt, halt)
        except Halted as halted:
            self._moved(halted.elapsed)
            raise
        return self._moved(dt)

    def _moved(self, dt: float) -> float:
        self.t += dt
        self.free_at = self.t
        self.clock.reach(self.t)
        return self.t
