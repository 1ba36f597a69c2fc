"""What every simulated instrument shares: a name, the world, and a ``stop()`` that works."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from labos.core.errors import DeviceFault, InterlockError, OutOfBoundsError
from labos.devices.drivers import InputSpec, check_values
from simulators.clock import Halted
from simulators.world import SimWorld

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
            self.begin()
            try:
                return fn(self, *args, **kwargs)
            except Halted as halted:
                self.safe_state()
                raise self.stopped(f"{fn.__name__} halted after {halted.elapsed:.0f} s; {left}") from None

        return action  # type: ignore[return-value]

    return wrap


class SimInstrument:
    """Base of the simulated drivers: every wait is on the world's clock and can be halted.

    An action calls :meth:`begin` first and waits with :meth:`sleep`; :meth:`stop`
    (from any thread) sets the halt event, which ends the wait at once with
    :class:`~simulators.clock.Halted`, and calls :meth:`safe_state`. The action then
    puts the instrument in its safe state and raises :meth:`stopped`.
    """

    def __init__(self, name: str, world: SimWorld) -> None:
        self.name = name
        self.world = world
        self.halt = threading.Event()

    def begin(self) -> None:
        """Start an action: a stop requested before it no longer applies."""
        self.halt.clear()

    def sleep(self, dt: float) -> None:
        """Let ``dt`` simulated seconds pass; raises :class:`Halted` if stopped meanwhile."""
        self.world.clock.sleep(dt, self.halt)

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
