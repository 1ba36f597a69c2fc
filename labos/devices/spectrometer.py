"""An ophyd device for a UV-vis absorbance spectrometer with a sample changer."""

from __future__ import annotations

import numpy as np
from ophyd import Component as Cpt
from ophyd import Kind, Signal
from ophyd.status import StatusBase

from labos.devices.base import DriverDevice
from labos.devices.drivers import SpectrometerDriver


class UVVisSpectrometer(DriverDevice):
    """A spectrometer driven through a :class:`~labos.devices.drivers.SpectrometerDriver`.

    ``set(sample_id)`` loads a sample; ``trigger()`` measures it with the current
    ``integration_time`` in the current ``mode``: ``absorbance``, or ``pl``
    (photoluminescence counts in ``emission``). Readings: the sample id, the wavelength axis (nm), the
    absorbance spectrum and the instrument time the measurement took.
    """

    sample_id = Cpt(Signal, value="", kind="normal")
    wavelength = Cpt(Signal, value=np.zeros(0), kind="normal", metadata={"units": "nm"})
    absorbance = Cpt(Signal, value=np.zeros(0), kind="hinted")
    duration = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "s"})
    integration_time = Cpt(Signal, value=0.1, kind="config", metadata={"units": "s"})
    mode = Cpt(Signal, value="absorbance", kind="normal", doc="absorbance or pl (photoluminescence)")
    emission = Cpt(Signal, value=np.zeros(0), kind="omitted", metadata={"units": "counts"})

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
        mode = str(self.mode.get())
        if mode != "absorbance":
            self.check_inputs({"mode": mode}, fill_defaults=False)
        pl = mode == "pl"  # read what was measured: the emission or the absorbance spectrum
        self.emission.kind = Kind.hinted if pl else Kind.omitted
        self.absorbance.kind = Kind.omitted if pl else Kind.hinted

        def measure() -> None:
            # a driver without modes is called as before: measure(t)
            spectrum = self.driver.measure(t_int) if mode == "absorbance" else self.driver.measure(t_int, mode)
            self.sample_id.put(spectrum.sample_id)
            self.wavelength.put(np.asarray(spectrum.wavelength_nm, dtype=float))
            self.absorbance.put(np.asarray(spectrum.absorbance, dtype=float))
            self.emission.put(np.asarray(getattr(spectrum, "emission", np.zeros(0)), dtype=float))
            self.duration.put(float(spectrum.duration_s))

        return self.run_in_thread("measure", measure)
