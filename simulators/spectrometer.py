"""A simulated UV-vis spectrometer: a direct-gap absorption edge with an Urbach tail."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from labos.core.errors import DeviceFault
from labos.devices.drivers import InputSpec, Spectrum
from simulators.instrument import SimInstrument, halts
from simulators.landscapes import SampleTruth
from simulators.options import SpectrometerOptions
from simulators.world import FaultPlan, SimWorld

HC_EV_NM = 1239.84193


def absorbance_model(wavelength_nm: NDArray[np.float64], truth: SampleTruth) -> NDArray[np.float64]:
    """Noise-free absorbance of a direct-gap semiconductor film.

    Above the edge ``alpha ~ sqrt(E - Eg) / E`` (so a Tauc plot of ``(alpha E)^2`` is a
    straight line); below it an exponential Urbach tail of width ``urbach_ev`` joins
    continuously; plus Rayleigh-like scattering ``~ lambda^-4``.
    """
    e = HC_EV_NM / wavelength_nm
    eg, eu = truth.band_gap_ev, truth.urbach_ev
    ej = eg + eu / 2.0
    norm = (eg + 0.5) / math.sqrt(0.5)
    above = np.sqrt(np.clip(e - eg, 0.0, None)) / e * norm
    a_j = math.sqrt(eu / 2.0) / ej * norm
    tail = a_j * np.exp(np.clip((e - ej) / eu, -50.0, 0.0))
    alpha = np.where(e >= ej, above, tail)
    return truth.amplitude * alpha + truth.scattering * (400.0 / wavelength_nm) ** 4


def emission_model(wavelength_nm: NDArray[np.float64], truth: SampleTruth) -> NDArray[np.float64]:
    """Noise-free band-edge photoluminescence (peak 1 at a perfect sample).

    A Gaussian in energy, Stokes-shifted below the gap by twice the Urbach energy, whose
    width grows with disorder (``0.05 eV + 2.5 Eu``) and whose quantum yield falls with it
    (``exp(-(Eu - 0.02) / 0.03)``).
    """
    e = HC_EV_NM / wavelength_nm
    peak = truth.band_gap_ev - 2.0 * truth.urbach_ev
    fwhm = 0.05 + 2.5 * truth.urbach_ev
    qy = math.exp(-max(truth.urbach_ev - 0.02, 0.0) / 0.03)
    out: NDArray[np.float64] = qy * np.exp(-4.0 * math.log(2.0) * ((e - peak) / fwhm) ** 2)
    return out


class SimSpectrometer(SimInstrument):
    """Implements :class:`~labos.devices.drivers.SpectrometerDriver` on a :class:`SimWorld`.

    Options
    -------
    wavelength_nm
        ``[start, stop, step]`` of the detector's wavelength axis.
    noise_absorbance
        Absorbance noise (standard deviation) at 100 ms integration; it falls as
        ``1 / sqrt(integration time)``.
    averages
        Number of spectra averaged per measurement (sets the duration).
    station
        The robot station of its sample holder (default: the instrument's name). A
        sample a robot has put elsewhere cannot be measured; samples in the flow line
        (``location`` none) are fed by the sample changer.
    faults
        ``{fault: probability}``: ``changer`` (the sample changer loses its position;
        default ``simulation.fault_rate``).
    """

    MAX_ABSORBANCE = 4.0  # stray light limits what the detector can resolve
    FAULTS: ClassVar[dict[str, str]] = {"changer": "sample changer lost position"}

    def __init__(self, name: str, world: SimWorld, options: Mapping[str, Any]) -> None:
        opts = SpectrometerOptions.parse(options, name)
        super().__init__(name, world)
        start, stop, step = opts.wavelength_nm
        self.wavelength = np.arange(start, stop + step / 2, step)
        self.noise = opts.noise_absorbance
        self.averages = opts.averages
        self.station = opts.station or name
        self.pl_counts_per_s = opts.pl_counts_per_s
        self.faults = FaultPlan(name, self.FAULTS, opts.faults, {"changer": world.fault_rate})
        self._loaded: str | None = None

    def max_simulated_s(self) -> float:
        """The slowest step: loading (15 s) or the longest measurement (``averages`` spectra of 10 s each)."""
        return max(15.0, 2.0 + self.averages * 10.0)

    def inputs(self) -> list[InputSpec]:
        """Integration time, and the mode: absorbance, or photoluminescence (``pl``)."""
        return [
            InputSpec("integration_time", "real", low=0.001, high=10.0, unit="s", default=0.1),
            InputSpec("mode", "choice", choices=("absorbance", "pl"), default="absorbance"),
        ]

    @halts("the sample changer halted")
    def load(self, sample_id: str) -> float:
        """Move ``sample_id`` into the beam with the sample changer (15 s)."""
        sample = self.world.sample(self.name, sample_id)
        self.on_sample(sample_id)
        if sample.location is not None and not sample.location.startswith(self.station + "/"):
            raise DeviceFault(self.name, f"sample {sample_id!r} is at {sample.location}, not in {self.station}")
        self.faults.check("changer", self.world.rng_for(self.name, sample_id, "load"))
        self.sleep(15.0)
        self._loaded = sample_id
        return 15.0

    @halts("the measurement discarded")
    def measure(self, integration_time_s: float, mode: str = "absorbance") -> Spectrum:
        """Average ``averages`` noisy spectra of the loaded sample (absorbance, or ``pl`` emission)."""
        self.require({"integration_time": integration_time_s, "mode": mode})
        if self._loaded is None:
            raise DeviceFault(self.name, "no sample loaded: call load() first")
        self.on_sample(self._loaded)
        sample = self.world.sample(self.name, self._loaded)
        truth = self.world.landscape_of(sample).optical(sample.state)
        if mode == "pl":
            return self._pl(truth, integration_time_s)
        clean = absorbance_model(self.wavelength, truth)
        rng = self.world.rng_for(self.name, self._loaded, "measure")
        sigma = self.noise * self.world.noise / math.sqrt(integration_time_s / 0.1) / math.sqrt(self.averages)
        noisy = clean + rng.normal(0.0, sigma, size=clean.shape)
        noisy = np.minimum(noisy, self.MAX_ABSORBANCE + rng.normal(0.0, 0.01, size=clean.shape))
        duration = 2.0 + self.averages * integration_time_s
        self.sleep(duration)
        return Spectrum(
            sample_id=self._loaded,
            wavelength_nm=self.wavelength.copy(),
            absorbance=noisy,
            integration_time_s=integration_time_s,
            duration_s=duration,
        )

    def _pl(self, truth: SampleTruth, integration_time_s: float) -> Spectrum:
        """Photoluminescence under 365 nm excitation: counts with Poisson noise and a dark level."""
        assert self._loaded is not None
        rng = self.world.rng_for(self.name, self._loaded, "pl")
        clean = emission_model(self.wavelength, truth) * self.pl_counts_per_s * integration_time_s
        dark = 20.0 * integration_time_s / 0.1
        counts = clean + dark
        noisy = rng.poisson(np.clip(counts, 0.0, None)).astype(float) if self.world.noise > 0 else counts
        duration = 2.0 + self.averages * integration_time_s
        self.sleep(duration)
        return Spectrum(
            sample_id=self._loaded,
            wavelength_nm=self.wavelength.copy(),
            absorbance=np.zeros(0),
            integration_time_s=integration_time_s,
            duration_s=duration,
            mode="pl",
            emission=noisy,
        )

    def close(self) -> None:
        """Nothing to release in simulation."""
