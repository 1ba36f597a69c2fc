"""What every simulated instrument shares: a name, the world, and a ``stop()`` that works."""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from labos.core.errors import DeviceFault, InterlockError, OutOfBoundsError
from labos.devices.drivers import InputSpec, check_values
from simulators.clock import Halted, Timeline
from simulators.world import ActionRecord, SimWorld

__all__ = ["Halted", "SimInstrument", "halts"]

F = TypeVar("F", bound=Callable[..., Any])


def halts(left: str) -> Callable[[F], F]:
    """Make a simulated action stoppable.

    The action calls :meth:`SimInstrument.begin` first; a halt raises
    :meth:`SimInstrument.stopped` saying ``left`` (the state the instrument is left in).
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def action(self: SimInstrument, *args: Any, **kwargs: Any) -> Any:
            self.begin(fn.__name__)
            try:
                return fn(self, *args, **kwargs)
            except Halted as halted:
                self.safe_state()
                raise self.stopped(f"{fn.__name__} halted after {halted.elapsed:.0f} s; {left}") from None

        return action  # type: ignore[return-value]

    return wrap


_ATTEMPT = re.compile(r"-a\d+$")


class SimInstrument:
    """Base of the simulated drivers: every wait is on the instrument's own timeline and can be halted.

    An action calls :meth:`begin` first, names its sample with :meth:`on_sample` and
    waits with :meth:`sleep`; :meth:`stop` (from any thread) sets the halt event, which
    ends the wait at once with :class:`~simulators.clock.Halted`, and calls
    :meth:`safe_state`. The action then puts the instrument in its safe state and
    raises :meth:`stopped`.

    Time: the instrument has a :class:`~simulators.clock.Timeline`; an action starts
    when the instrument is free and its sample's last action has ended, so instruments
    acting at once overlap in simulated time. Every action that takes time is logged by
    the instrument itself in the world's sample book (:meth:`SampleBook.actions
    <simulators.world.SampleBook.actions>`): start, end, sample and holder, in simulated
    and wall-clock time, independently of whatever labos records.
    """

    def __init__(self, name: str, world: SimWorld) -> None:
        self.name = name
        self.world = world
        self.halt = threading.Event()
        self.timeline = Timeline(world.clock)
        self._action = "action"
        self._sample: str | None = None
        self._row: int | None = None
        self._wall_start = 0.0
        self._sim_start = self.timeline.t

    def begin(self, action: str = "action") -> None:
        """Start an action: a stop requested before it no longer applies; it starts when the instrument is free."""
        self.halt.clear()
        self._action, self._sample, self._row = action, None, None
        self._wall_start = time.time()
        self._sim_start = self.timeline.begin()

    def on_sample(self, sample_id: str | None, *, new: bool = False) -> None:
        """The current action works on ``sample_id``: it starts no earlier than that sample's last action ended.

        ``new``: the action makes the sample, so it starts no earlier than the world's
        present (the frontier): an experiment proposed now is not made in the past.
        """
        if self._row is not None or sample_id is None:
            return
        after = self.world.clock.now() if new else self.world.book.time_of(sample_id)
        self._sample = sample_id
        self._sim_start = self.timeline.begin(after)

    def now(self) -> float:
        """Simulated time as this instrument sees it: where its current (or last) action is."""
        return self.timeline.t

    def sleep(self, dt: float) -> None:
        """Let ``dt`` simulated seconds pass on the instrument's timeline; :class:`Halted` if stopped meanwhile."""
        try:
            self.timeline.wait(dt, self.halt)
        finally:
            self._logged()

    def _logged(self) -> None:
        now = time.time()
        if self._row is None:
            holder = _ATTEMPT.sub("", self._sample) if self._sample else None
            record = ActionRecord(
                self.name, self._action, self._sample, holder, self._sim_start, self.timeline.t, self._wall_start, now
            )
            self._row = self.world.book.log_action(record)
        else:
            self.world.book.progress(self._row, self._sample, self.timeline.t, now)

    def stop(self) -> None:
        """Halt whatever the instrument is doing and put it in its safe state."""
        self.halt.set()
        self.safe_state()

    MAX_SIMULATED_S = 86_400.0
    """The longest any action of the instrument can take, in simulated seconds (a day unless bounded tighter)."""

    def max_simulated_s(self) -> float:
        """The longest any action can take within the declared limits, in simulated seconds."""
        return self.MAX_SIMULATED_S

    def max_action_s(self) -> float:
        """The longest any action can take, in wall-clock seconds (the device bounds its steps by it)."""
        return self.max_simulated_s() / self.world.clock.acceleration

    def inputs(self) -> list[InputSpec]:
        """The inputs the instrument accepts, with its hard limits (each simulator declares its own)."""
        raise NotImplementedError

    def require(self, values: Mapping[str, Any], required: tuple[str, ...] = ()) -> None:
        """The instrument's own interlock, behind the device's and the server's checks.

        Raises
        ------
        InterlockError
            If a value is outside the declared limits, unknown, or a ``required`` one is missing.
        """
        missing = [r for r in required if r not in values]
        if missing:
            raise InterlockError(
                f"{self.name}: refused: {', '.join(missing)} not given (the instrument's own interlock)"
            )
        try:
            check_values(self.name, self.inputs(), values)
        except OutOfBoundsError as exc:
            raise InterlockError(f"{exc} (refused by the instrument's own interlock)") from None

    def safe_state(self) -> None:
        """Go to the safe state (heater off, shutter closed, ...); nothing by default."""

    def stopped(self, what: str) -> DeviceFault:
        """The fault an action raises when it was stopped, saying what state it left."""
        return DeviceFault(self.name, f"stopped by request: {what}")
