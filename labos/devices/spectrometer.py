"""An ophyd device for a UV-vis absorbance spectrometer with a sample changer."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, StatusBase

from labos.core.errors import OutOfBoundsError
from labos.devices.drivers import InputSpec, SpectrometerDriver


class UVVisSpectrometer(Device):
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
    state = Cpt(Signal, value="idle", kind="config")

    def __init__(self, prefix: str = "", *, driver: SpectrometerDriver, name: str, **kwargs: Any) -> None:
        super().__init__(prefix, name=name, **kwargs)
        self.driver = driver
        self.inputs: dict[str, InputSpec] = {i.name: i for i in driver.inputs()}
        self._loaded: str | None = None

    def _run(self, what: str, fn: Any) -> StatusBase:
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

    def set(self, sample_id: str) -> StatusBase:
        """Load sample ``sample_id`` into the beam."""

        def load() -> None:
            self.driver.load(str(sample_id))
            self._loaded = str(sample_id)

        return self._run("load", load)

    def check_integration_time(self, value: float) -> None:
        """Raise :class:`OutOfBoundsError` if ``value`` breaks the instrument's limit."""
        spec = self.inputs.get("integration_time")
        problem = spec.problem(value) if spec is not None else None
        if problem is not None:
            raise OutOfBoundsError(f"{self.name}: integration_time = {problem}")

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

        return self._run("measure", measure)
