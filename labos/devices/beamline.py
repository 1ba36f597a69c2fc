"""An ophyd device for an X-ray powder-diffraction beamline."""

from __future__ import annotations

from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Signal
from ophyd.status import Status, StatusBase

from labos.core.errors import InterlockError
from labos.devices.base import DriverDevice
from labos.devices.drivers import BeamlineDriver


class DriverAxis(Signal):
    """A signal whose ``set`` moves an axis of the parent's driver (energy, slits, shutter).

    Limits are checked before the axis moves; the status completes when the driver
    reports the readback, which becomes the signal's value.
    """

    def __init__(self, *, axis: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def set(self, value: Any, **kwargs: Any) -> StatusBase:
        """Move the axis to ``value`` on the beamline's worker."""
        dev: XRDBeamline = self.parent
        dev.check_axis(self.axis, value)  # raises before anything moves
        if self.axis == "shutter" and value == "closed" and dev.busy:
            dev.stop(success=False)  # closing the shutter is never refused: halt the exposure, which closes it
            status = Status(obj=self)
            status.set_finished()
            return status

        def work() -> None:
            Signal.put(self, dev.move_axis(self.axis, value))

        return dev.run_in_thread(f"move {self.axis}", work, obj=self)


class XRDBeamline(DriverDevice):
    """A diffraction beamline driven through a :class:`~labos.devices.drivers.BeamlineDriver`.

    Axes (``bps.mv`` moves them through the driver): ``energy`` (monochromator, keV),
    ``slit_h``/``slit_v`` (mm) and ``shutter`` (``open``/``closed``). ``set(sample_id)``
    mounts a sample on the stage; ``trigger()`` exposes it for ``exposure`` seconds.
    :meth:`stop` ends a move or an exposure and closes the shutter.
    Nothing is measured with the shutter closed: :meth:`trigger` refuses with
    :class:`InterlockError`. Readings: the 2-theta axis, the counts, the energy, the
    ring current during the exposure and the time taken.
    """

    energy = Cpt(DriverAxis, axis="energy", value=17.0, kind="config", metadata={"units": "keV"})
    slit_h = Cpt(DriverAxis, axis="slit_h", value=0.5, kind="config", metadata={"units": "mm"})
    slit_v = Cpt(DriverAxis, axis="slit_v", value=0.5, kind="config", metadata={"units": "mm"})
    shutter = Cpt(DriverAxis, axis="shutter", value="closed", kind="config")
    exposure = Cpt(Signal, value=10.0, kind="config", metadata={"units": "s"})
    sample_id = Cpt(Signal, value="", kind="normal")
    two_theta = Cpt(Signal, value=np.zeros(0), kind="normal", metadata={"units": "deg"})
    counts = Cpt(Signal, value=np.zeros(0), kind="hinted")
    beam_energy = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "keV"})
    ring_current = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "mA"})
    duration = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "s"})

    driver: BeamlineDriver

    def check_axis(self, axis: str, value: Any) -> None:
        """Check a move against the instrument's limits (raises before moving)."""
        if axis == "shutter":
            if value not in ("open", "closed"):
                raise InterlockError(f"{self.name}: shutter = {value!r} is not 'open' or 'closed'")
            return
        self.check_inputs({axis: value}, fill_defaults=False)

    def stop(self, *, success: bool = False) -> None:
        """Halt the beamline (the driver closes the shutter); the shutter readback follows."""
        stopping = self.busy or not success
        super().stop(success=success)
        if stopping:
            Signal.put(self.shutter, "closed")

    def move_axis(self, axis: str, value: Any) -> Any:
        """Blocking move through the driver; returns the readback."""
        if axis == "shutter":
            return self.driver.shutter(value == "open")
        return self.driver.move(axis, float(value))

    def set(self, sample_id: str) -> StatusBase:
        """Mount sample ``sample_id`` on the stage."""

        def mount() -> None:
            self.driver.mount(str(sample_id))
            self.sample_id.put(str(sample_id))

        return self.run_in_thread("mount", mount)

    def trigger(self) -> StatusBase:
        """Expose the mounted sample (the shutter must be open)."""
        t = float(self.exposure.get())
        self.check_inputs({"exposure": t}, fill_defaults=False)
        shutter = self.shutter.get()  # the readback of the last move: no round trip on the event loop
        if shutter != "open":  # interlock: checked before anything happens (the instrument checks again)
            raise InterlockError(f"{self.name}: shutter is {shutter}: nothing can be measured")

        def acquire() -> None:
            d = self.driver.acquire(t)
            self.sample_id.put(d.sample_id)
            self.two_theta.put(np.asarray(d.two_theta_deg, dtype=float))
            self.counts.put(np.asarray(d.counts, dtype=float))
            self.beam_energy.put(float(d.energy_kev))
            self.ring_current.put(float(d.ring_current_ma))
            self.duration.put(float(d.duration_s))

        return self.run_in_thread("acquire", acquire)
