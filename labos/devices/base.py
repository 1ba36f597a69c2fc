"""What every labos ophyd device shares: a driver, checked inputs, and work off the event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, Status, StatusBase

from labos.core.errors import OutOfBoundsError
from labos.core.space import ParamValue
from labos.devices.drivers import InputSpec


class DriverDevice(Device):
    """An ophyd device over a driver object (simulator, remote client, EPICS or hardware).

    Subclasses call :meth:`check_inputs` before anything moves and :meth:`run_in_thread`
    for blocking driver work; ``state`` reads ``idle``, ``busy`` or ``fault``.
    """

    state = Cpt(Signal, value="idle", kind="config")

    def __init__(self, prefix: str = "", *, driver: Any, name: str, **kwargs: Any) -> None:
        super().__init__(prefix, name=name, **kwargs)
        self.driver = driver
        self.inputs: dict[str, InputSpec] = {i.name: i for i in driver.inputs()}

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

    def run_in_thread(self, what: str, fn: Callable[[], None]) -> StatusBase:
        """Run ``fn`` in a worker thread; the status fails with whatever ``fn`` raises."""
        status = DeviceStatus(self)
        self.state.put("busy")

        def work() -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - every failure is reported through the status
                self.state.put("fault")
                status.set_exception(exc)
                return
            self.state.put("idle")
            status.set_finished()

        threading.Thread(target=work, name=f"{self.name}-{what}", daemon=True).start()
        return status

    def trigger(self) -> StatusBase:
        """Readings are updated by ``set``; triggering only reports them."""
        status = Status(obj=self)
        status.set_finished()
        return status
