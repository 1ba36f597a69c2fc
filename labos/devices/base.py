"""What every labos ophyd device shares: a driver, checked inputs, bounded work off the event loop, ``stop()``."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, Status, StatusBase

from labos.core.errors import ActionTimeout, InstrumentStateUnknown, InterlockError, OutOfBoundsError
from labos.core.space import ParamValue
from labos.devices.drivers import InputSpec

DEFAULT_TIMEOUT_S = 3600.0
"""Wall-clock seconds an action may take before it is stopped (``timeout_s`` of an instrument)."""
STOP_GRACE_S = 30.0
"""Wall-clock seconds a timed-out action has, once stopped, to end before its state counts as unknown."""

log = logging.getLogger(__name__)


class DriverDevice(Device):
    """An ophyd device over a driver object (simulator, remote client, EPICS or hardware).

    Every action (``set``, ``trigger``, an axis move) runs on the device's single worker
    thread, so the RunEngine's event loop never waits on a driver and a device does one
    thing at a time (a second action while one runs is refused). An action that runs
    past ``timeout_s`` is stopped and its status fails with
    :class:`~labos.core.errors.ActionTimeout` once it has ended (see
    :meth:`run_in_thread`). :meth:`stop` (called by the RunEngine on pause, abort and at
    the end of every plan) asks the driver to halt a running action and go to its safe
    state. ``state`` reads ``idle``, ``busy``, ``stopped``, ``fault`` or ``unknown``.

    Parameters
    ----------
    driver
        The object that talks to the instrument (see :mod:`labos.devices.drivers`).
    name
        The instrument's name.
    timeout_s
        Wall-clock limit of one action (``None``: no limit but the driver's own bound).
    stop_grace_s
        How long a timed-out action has, once stopped, to end (default :data:`STOP_GRACE_S`).
    """

    state = Cpt(Signal, value="idle", kind="config")

    def __init__(
        self,
        prefix: str = "",
        *,
        driver: Any,
        name: str,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        stop_grace_s: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(prefix, name=name, **kwargs)
        self.driver = driver
        self.timeout_s = timeout_s
        self.stop_grace_s = STOP_GRACE_S if stop_grace_s is None else stop_grace_s
        self.inputs: dict[str, InputSpec] = {i.name: i for i in driver.inputs()}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"labos-{name}")
        self._guard = threading.Lock()
        self._action: str | None = None
        self._stopping = self._stop_success = False
        self.action_thread: int | None = None
        """The thread that started the last action (a RunEngine's loop: see :class:`labos.lanes.LaneRunEngine`)."""

    def check_inputs(self, values: Mapping[str, Any], *, fill_defaults: bool = True) -> dict[str, ParamValue]:
        """Validate ``values`` against the instrument's inputs and limits (defaults filled in).

        Raises
        ------
        OutOfBoundsError
            Naming the device, the input, the limit and the value.
        """
        unknown = sorted(set(values) - set(self.inputs))
        if unknown:
            raise OutOfBoundsError(
                f"{self.name}: unknown input(s) {', '.join(unknown)}; accepted: {', '.join(self.inputs)}"
            )
        out: dict[str, ParamValue] = {}
        for name, spec in self.inputs.items():
            if name in values:
                value = values[name]
            elif not fill_defaults:
                continue
            elif spec.kind == "component":
                value = 0.0
            elif spec.default is not None:
                value = spec.default
            else:
                raise OutOfBoundsError(f"{self.name}: input {name!r} is required and has no default")
            problem = spec.problem(value)
            if problem is not None:
                raise OutOfBoundsError(f"{self.name}: {name} = {problem}")
            out[name] = value
        return out

    @property
    def time_limit_s(self) -> float | None:
        """Wall-clock seconds one action may take: ``timeout_s``, or less where the driver bounds its actions.

        A driver with ``max_action_s()`` (the longest any action can take, from its
        declared limits) bounds every action to twice that plus a minute, so that a
        step that would hang is stopped even where ``timeout_s`` is generous.
        """
        bound = getattr(self.driver, "max_action_s", None)
        derived = 2.0 * float(bound()) + 60.0 if callable(bound) else math.inf
        return min(self.timeout_s if self.timeout_s is not None else math.inf, derived)

    @property
    def busy(self) -> bool:
        """Whether an action is running on the instrument."""
        return self._action is not None

    def run_in_thread(self, what: str, fn: Callable[[], None], obj: Any = None) -> StatusBase:
        """Run ``fn`` on the device's worker; the status fails with whatever ``fn`` raises, or on timeout.

        An action that runs past :attr:`time_limit_s` is stopped on the instrument, and
        its status fails only once the action has really ended
        (:class:`~labos.core.errors.ActionTimeout`): until then the instrument may still
        be acting on its sample, and a plan must not go on (to a recovery move, say).
        One that has not ended :attr:`stop_grace_s` after the stop fails with
        :class:`~labos.core.errors.InstrumentStateUnknown`, and the device refuses
        every later action.

        Raises
        ------
        InterlockError
            If another action is still running (one action at a time).
        """
        with self._guard:
            if self._action is not None:
                raise InterlockError(f"{self.name}: busy with {self._action}; one action at a time")
            self._action = what
            self._stopping = self._stop_success = False
            self.action_thread = threading.get_ident()
        status = DeviceStatus(obj or self)
        self.state.put("busy")
        limit = self.time_limit_s
        ending = threading.Lock()  # the worker and the timers settle the status one at a time
        flags = {"timed_out": False, "unknown": False, "ended": False}
        timers: list[threading.Timer] = []

        def start_timer(seconds: float, fn: Callable[[], None]) -> None:
            t = threading.Timer(seconds, fn)
            t.daemon = True
            timers.append(t)
            t.start()

        def on_grace() -> None:
            with ending:
                if flags["ended"]:
                    return
                flags["unknown"] = True
            with self._guard:
                self._action = f"{what}, which never ended (state unknown: restart the device once checked)"
            self.state.put("unknown")
            log.error("%s: %s did not end %g s after it was stopped", self.name, what, self.stop_grace_s)
            status.set_exception(
                InstrumentStateUnknown(
                    self.name,
                    f"{what} ran past its {limit:g} s limit and had not ended {self.stop_grace_s:g} s after it "
                    "was stopped: the instrument's state and its sample's place are unknown; check it before "
                    "anything touches it",
                )
            )

        def on_timeout() -> None:
            with ending:
                if flags["ended"]:
                    return
                flags["timed_out"] = True
            self._stopping, self._stop_success = True, False
            try:
                self.driver.stop()  # do not leave the instrument running unattended
            except Exception:  # the grace timer decides what the state is
                log.exception("%s: stopping %s after its timeout failed", self.name, what)
            start_timer(self.stop_grace_s, on_grace)

        def work() -> None:
            error: Exception | None = None
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - every failure is reported through the status
                error = exc
            with ending:
                flags["ended"] = True
                for t in timers:
                    t.cancel()
                if flags["unknown"]:  # reported already; the device stays out of service
                    log.error("%s: %s ended after its state was declared unknown", self.name, what)
                    return
            if flags["timed_out"]:
                self._finish("stopped")
                ended = f"it then ended: {error}" if error is not None else "it had just finished"
                status.set_exception(
                    ActionTimeout(self.name, f"{what} ran past its {limit:g} s limit and was stopped ({ended})")
                )
            elif error is not None:
                self._finish("stopped" if self._stopping else "fault")
                if self._stopping and self._stop_success:
                    status.set_finished()  # stopped as planned (a pause): done, as a stopped motor's move is
                else:
                    status.set_exception(error)
            else:
                self._finish("idle")
                status.set_finished()

        if limit is not None and math.isfinite(limit):
            start_timer(limit, on_timeout)
        self._worker.submit(work)
        return status

    def _finish(self, state: str) -> None:
        with self._guard:
            self._action = None
        self.state.put(state)

    def stop(self, *, success: bool = False) -> None:
        """Halt the running action and put the instrument in its safe state.

        The RunEngine calls ``stop(success=True)`` on every device a plan moved when the
        plan ends, pauses or is aborted: an idle device then has nothing to do; a busy one
        is stopped, and its action's status completes (as a stopped motor's move does:
        the plan's checkpoint makes ``RE.resume()`` run the step again). With
        ``success=False`` (a timeout, an emergency stop) the status fails; on an idle
        device it still asks the driver for its safe state.
        """
        if self.busy or not success:
            self._stopping, self._stop_success = True, success
            self.driver.stop()

    def trigger(self) -> StatusBase:
        """Readings are updated by ``set``; triggering only reports them."""
        status = Status(obj=self)
        status.set_finished()
        return status

    def destroy(self) -> None:
        """Release the worker thread (the driver is closed by its :class:`~labos.devices.lab.Lab`)."""
        self._worker.shutdown(wait=False, cancel_futures=True)
        super().destroy()
