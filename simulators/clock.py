"""A simulated clock: realistic durations, accelerated wall-clock time."""

from __future__ import annotations

import math
import threading
import time


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

    def sleep(self, dt: float) -> None:
        """Let ``dt`` simulated seconds pass."""
        if dt < 0 or not math.isfinite(dt):
            raise ValueError(f"cannot sleep for {dt} s")
        if math.isfinite(self.acceleration):
            time.sleep(dt / self.acceleration)
        with self._lock:
            self._t += dt
