"""An ophyd device for a programmable furnace with an over-temperature interlock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Signal
from ophyd.status import StatusBase

from labos.devices.base import DriverDevice
from labos.devices.drivers import FurnaceDriver


class Furnace(DriverDevice):
    """A furnace driven through a :class:`~labos.devices.drivers.FurnaceDriver`.

    ``set({"sample_id": ..., "program": {"temperature", "dwell", "ramp_rate", "atmosphere"}})``
    runs a heat treatment on the loaded sample. The setpoint is checked against the
    interlock (the ``temperature`` input's high limit) before the furnace heats.
    :meth:`stop` switches the heater off (the safe state) and ends the program.
    Readings: the setpoint, dwell and ramp, the logged temperature profile, the
    instrument time including cool-down, and the controller's readback (temperature
    and heater) at trigger time.
    """

    sample_id = Cpt(Signal, value="", kind="normal")
    setpoint = Cpt(Signal, value=25.0, kind="hinted", metadata={"units": "degC"})
    dwell = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "min"})
    ramp_rate = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "K/min"})
    peak_temperature = Cpt(Signal, value=25.0, kind="normal", metadata={"units": "degC"})
    profile_time = Cpt(Signal, value=np.zeros(0), kind="normal", metadata={"units": "s"})
    profile_temperature = Cpt(Signal, value=np.zeros(0), kind="normal", metadata={"units": "degC"})
    duration = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "s"})
    temperature = Cpt(Signal, value=25.0, kind="normal", metadata={"units": "degC"}, doc="readback now")
    heater = Cpt(Signal, value="off", kind="normal", doc="on / off")

    driver: FurnaceDriver

    def set(self, request: Mapping[str, Any]) -> StatusBase:
        """Anneal: ``request = {"sample_id": str, "program": {...}}``."""
        sample_id = str(request["sample_id"])
        program = self.check_inputs(request["program"])  # interlock and limits: before anything heats

        def work() -> None:
            report = self.driver.anneal(sample_id, program)
            self.sample_id.put(report.sample_id)
            self.setpoint.put(report.setpoint_c)
            self.dwell.put(report.dwell_min)
            self.ramp_rate.put(report.ramp_k_per_min)
            temps = np.asarray(report.temperature_c, dtype=float)
            self.profile_time.put(np.asarray(report.time_s, dtype=float))
            self.profile_temperature.put(temps)
            self.peak_temperature.put(float(temps.max()) if temps.size else report.setpoint_c)
            self.duration.put(float(report.duration_s))

        return self.run_in_thread("anneal", work)

    def trigger(self) -> StatusBase:
        """Read the controller's temperature and heater state (off the event loop)."""

        def read() -> None:
            now = self.driver.readback()
            self.temperature.put(float(now["temperature_c"]))
            self.heater.put(str(now["heater"]))

        return self.run_in_thread("read", read)
