"""A simulated clock: realistic durations, accelerated wall-clock time."""

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

    ``sleep(dt)`` advances simulated time by ``dt`` seconds and sleeps
    ``dt / acceleration`` real seconds (never, when ``acceleration`` is infinite), so
    recorded durations stay realistic while tests take milliseconds.

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
        self._t = time.time() if start is None else start
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current simulated time (seconds since the epoch)."""
        with self._lock:
            return self._t

    def sleep(self, dt: float, halt: threading.Event | None = None) -> None:
        """Let ``dt`` simulated seconds pass, unless ``halt`` is set first.

        Raises
        ------
        Halted
            When ``halt`` is (or becomes) set; the simulated time up to then has passed.
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
                elapsed = min((time.monotonic() - start) * self.acceleration, dt)
                with self._lock:
                    self._t += elapsed
                raise Halted(elapsed)
        with self._lock:
            self._t += dt
