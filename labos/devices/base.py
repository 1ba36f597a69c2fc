"""What every labos ophyd device shares: a driver, checked inputs, bounded work off the event loop, ``stop()``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, Status, StatusBase
from ophyd.utils import StatusTimeoutError

from labos.core.errors import InterlockError, OutOfBoundsError
from labos.core.space import ParamValue
from labos.devices.drivers import InputSpec

DEFAULT_TIMEOUT_S = 3600.0
"""Wall-clock seconds an action may take before its status fails (``timeout_s`` of an instrument)."""


class DriverDevice(Device):
    """An ophyd device over a driver object (simulator, remote client, EPICS or hardware).

    Every action (``set``, ``trigger``, an axis move) runs on the device's single worker
    thread, so the RunEngine's event loop never waits on a driver and a device does one
    thing at a time (a second action while one runs is refused). Each action's status
    fails with :class:`ophyd.utils.StatusTimeoutError` after ``timeout_s`` and the
    driver is stopped. :meth:`stop` (called by the RunEngine on pause, abort and at
    the end of every plan) asks the driver to halt a running action and go to its safe
    state. ``state`` reads ``idle``, ``busy``, ``stopped`` or ``fault``.

    Parameters
    ----------
    driver
        The object that talks to the instrument (see :mod:`labos.devices.drivers`).
    name
        The instrument's name.
    timeout_s
        Wall-clock limit of one action (``None``: no limit).
    """

    state = Cpt(Signal, value="idle", kind="config")

    def __init__(
        self, prefix: str = "", *, driver: Any, name: str, timeout_s: float | None = DEFAULT_TIMEOUT_S, **kwargs: Any
    ) -> None:
        super().__init__(prefix, name=name, **kwargs)
        self.driver = driver
        self.timeout_s = timeout_s
        self.inputs: dict[str, InputSpec] = {i.name: i for i in driver.inputs()}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"labos-{name}")
        self._guard = threading.Lock()
        self._action: str | None = None
        self._stopping = self._stop_success = False

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
    def busy(self) -> bool:
        """Whether an action is running on the instrument."""
        return self._action is not None

    def run_in_thread(self, what: str, fn: Callable[[], None], obj: Any = None) -> StatusBase:
        """Run ``fn`` on the device's worker; the status fails with whatever ``fn`` raises, or on timeout.

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
        status = DeviceStatus(obj or self, timeout=self.timeout_s)
        self.state.put("busy")

        def timed_out(st: StatusBase) -> None:
            if isinstance(st.exception(), StatusTimeoutError) and self._action == what:
                self.stop(success=False)  # do not leave the instrument running unattended

        status.add_callback(timed_out)

        def work() -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - every failure is reported through the status
                self._finish("stopped" if self._stopping else "fault")
                if status.done:
                    return
                if self._stopping and self._stop_success:
                    status.set_finished()  # stopped as planned (a pause): done, as a stopped motor's move is
                else:
                    status.set_exception(exc)
                return
            self._finish("idle")
            if not status.done:
                status.set_finished()

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
