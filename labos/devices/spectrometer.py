"""An ophyd device for a UV-vis absorbance spectrometer with a sample changer."""

from __future__ import annotations

import numpy as np
from ophyd import Component as Cpt
from ophyd import Signal
from ophyd.status import StatusBase

from labos.devices.base import DriverDevice
from labos.devices.drivers import SpectrometerDriver


class UVVisSpectrometer(DriverDevice):
    """A spectrometer driven through a :class:`~labos.devices.drivers.SpectrometerDriver`.

    ``set(sample_id)`` loads a sample; ``trigger()`` measures it with the current
    ``integration_time``. Readings: the sample id, the wavelength axis (nm), the
    absorbance spectrum and the instrument time the measurement took.
    """

    sample_id = Cpt(Signal, value="", kind="normal")
    wavelength = Cpt(Signal, value=np.zeros(0), kind="normal", metadata={"units": "nm"})
    absorbance = Cpt(Signal, value=np.zeros(0), kind="hinted")
    duration = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "s"})
    integration_time = Cpt(Signal, value=0.1, kind="config", metadata={"units": "s"})

    driver: SpectrometerDriver

    def set(self, sample_id: str) -> StatusBase:
        """Load sample ``sample_id`` into the beam."""

        def load() -> None:
            self.driver.load(str(sample_id))

        return self.run_in_thread("load", load)

    def check_integration_time(self, value: float) -> None:
        """Raise :class:`OutOfBoundsError` if ``value`` breaks the instrument's limit."""
        if "integration_time" in self.inputs:
            self.check_inputs({"integration_time": value}, fill_defaults=False)

    def trigger(self) -> StatusBase:
        """Measure the loaded sample."""
        t_int = float(self.integration_time.get())
        self.check_integration_time(t_int)  # before anything moves

        def measure() -> None:
            spectrum = self.driver.measure(t_int)
            self.sample_id.put(spectrum.sample_id)
            self.wavelength.put(np.asarray(spectrum.wavelength_nm, dtype=float))
            self.absorbance.put(np.asarray(spectrum.absorbance, dtype=float))
            self.duration.put(float(spectrum.duration_s))

        return self.run_in_thread("measure", measure)
