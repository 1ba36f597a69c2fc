"""A simulated powder-diffraction beamline at a storage ring.

Peak positions follow Bragg's law at the monochromator energy from each phase's
d-spacings (:mod:`simulators.xrd`, the simulator's own ground truth); pseudo-Voigt
peaks widen with angle from the crystallite size (Scherrer) and the instrument
resolution; counts are Poisson with a mean proportional to exposure, ring current and
slit area. Nothing is measured with the shutter closed. Beam dumps happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from labos.core.errors import DeviceFault
from labos.devices.drivers import Diffractogram, InputSpec
from simulators.instrument import SimInstrument, halts
from simulators.options import BeamlineOptions
from simulators.world import FaultPlan, SimWorld
from simulators.xrd import pattern


class SimBeamline(SimInstrument):
    """Implements :class:`~labos.devices.drivers.BeamlineDriver` on a :class:`SimWorld`.

    Options
    -------
    station
        Robot station of the diffractometer's sample stage (default: the instrument's name).
    two_theta_deg
        ``[start, stop, step]`` of the integrated detector's 2-theta axis.
    energy_kev
        ``[low, high]`` range of the monochromator.
    flux
        Counts per second at a peak of unit intensity, 400 mA and 0.5 x 0.5 mm slits.
    resolution_deg
        Instrumental peak width (FWHM, degrees).
    refill_min
        Time without beam after a dump.
    faults
        ``{fault: probability per exposure}``: ``beam_dump``, ``disconnect``,
        ``detector_timeout``.
    """

    FAULTS: ClassVar[dict[str, str]] = {
        "beam_dump": "beam dump: ring current fell to 0 mA during the exposure",
        "disconnect": "lost connection to the beamline control system",
        "detector_timeout": "detector did not return a frame within its readout timeout",
    }
    RING_MA = 400.0

    def __init__(self, name: str, world: SimWorld, options: Mapping[str, Any]) -> None:
        opts = BeamlineOptions.parse(options, name)
        super().__init__(name, world)
        self.station = opts.station or name
        start, stop, step = opts.two_theta_deg
        self.two_theta = np.arange(start, stop + step / 2, step)
        self.e_low, self.e_high = opts.energy_kev
        self.flux = opts.flux
        self.resolution = opts.resolution_deg
        self.refill_s = opts.refill_min * 60.0
        self.faults = FaultPlan(name, self.FAULTS, opts.faults)
        self.state: dict[str, Any] = {"energy_kev": 17.0, "slit_h": 0.5, "slit_v": 0.5, "shutter": "closed"}
        self.mounted: str | None = None
        self.beam_back_at = 0.0

    def inputs(self) -> list[InputSpec]:
        """Energy, slit gaps and exposure time."""
        return [
            InputSpec("energy", "real", low=self.e_low, high=self.e_high, unit="keV", default=17.0),
            InputSpec("slit_h", "real", low=0.01, high=2.0, unit="mm", default=0.5),
            InputSpec("slit_v", "real", low=0.01, high=2.0, unit="mm", default=0.5),
            InputSpec("exposure", "real", low=0.1, high=600.0, unit="s", default=10.0),
        ]

    def safe_state(self) -> None:
        """Close the photon shutter."""
        self.state["shutter"] = "closed"

    def _ring_current(self) -> float:
        if self.now() < self.beam_back_at:
            return 0.0
        # top-up: a 1 % sawtooth every 2 minutes
        return self.RING_MA * (1.0 - 0.01 * ((self.now() % 120.0) / 120.0))

    def beam(self) -> dict[str, Any]:
        """Ring current, shutter, energy and slits now."""
        return {**self.state, "ring_current_ma": self._ring_current()}

    @halts("the axis is where it stopped, the shutter closed")
    def move(self, axis: str, value: float) -> float:
        """Move the monochromator (``energy``) or a slit blade pair."""
        if axis not in ("energy", "slit_h", "slit_v"):
            raise DeviceFault(self.name, f"no axis {axis!r} (energy, slit_h, slit_v)")
        self.require({axis: value})
        self.faults.check("disconnect", self.world.rng_for(self.name, self.mounted, f"move {axis}"))
        if axis == "energy":
            self.sleep(10.0 + 5.0 * abs(value - float(self.state["energy_kev"])))
            self.state["energy_kev"] = float(value)
            return float(value)
        self.sleep(2.0)
        self.state[axis] = float(value)
        return float(value)

    @halts("the shutter closed")
    def shutter(self, open_: bool) -> str:
        """Open or close the photon shutter (1 s)."""
        self.faults.check("disconnect", self.world.rng_for(self.name, self.mounted, "shutter"))
        self.sleep(1.0)
        self.state["shutter"] = "open" if open_ else "closed"
        return str(self.state["shutter"])

    @halts("the stage halted, the shutter closed")
    def mount(self, sample_id: str) -> float:
        """Centre the sample on the stage (it must have been placed there)."""
        sample = self.world.sample(self.name, sample_id)
        self.on_sample(sample_id)
        if sample.location is None or not sample.location.startswith(self.station + "/"):
            raise DeviceFault(
                self.name, f"sample {sample_id!r} is at {sample.location or 'the flow line'}, not on {self.station}"
            )
        self.sleep(30.0)
        self.mounted = sample_id
        return 30.0

    @halts("the exposure ended, the shutter closed")
    def acquire(self, exposure_s: float) -> Diffractogram:
        """Expose the mounted sample and integrate the detector image over azimuth."""
        self.require({"exposure": exposure_s})
        self.on_sample(self.mounted)
        rng = self.world.rng_for(self.name, self.mounted, "acquire")
        self.faults.check("disconnect", rng)
        if self.state["shutter"] != "open":
            raise DeviceFault(self.name, "interlock: the shutter is closed, nothing can be measured")
        if self.mounted is None:
            raise DeviceFault(self.name, "no sample mounted")
        wait = max(self.beam_back_at - self.now(), 0.0)
        if wait > 0:  # the control system holds the exposure until the ring is refilled
            self.sleep(wait)
        if self.faults.happens("beam_dump", rng):
            self.sleep(exposure_s * float(rng.uniform(0.0, 1.0)))
            self.beam_back_at = self.now() + self.refill_s
            self.state["shutter"] = "closed"  # the personnel-safety system closes it
            raise DeviceFault(self.name, self.FAULTS["beam_dump"] + " (simulated beam_dump)", transient=True)
        self.faults.check("detector_timeout", rng)
        sample = self.world.sample(self.name, self.mounted)
        try:
            truth = self.world.landscape_of(sample).phases(sample.state)
        except ValueError as exc:
            raise DeviceFault(self.name, str(exc)) from None
        energy = float(self.state["energy_kev"])
        current = self._ring_current()
        scale = self.flux * exposure_s * current / self.RING_MA * (self.state["slit_h"] * self.state["slit_v"]) / 0.25
        displacement = float(rng.normal(0.0, 0.01))  # sample height error shifts every peak a little
        clean = pattern(self.two_theta, truth.fractions, energy, truth.crystallite_nm, self.resolution, displacement)
        clean *= 1.0 + 0.1 * float(sample.state.get("orientation", 0.0))
        background = 0.015 + 0.02 * np.exp(-(self.two_theta - self.two_theta[0]) / 10.0)
        mean = scale * (clean + background)
        counts = rng.poisson(np.clip(mean, 0.0, None)).astype(float) if self.world.noise > 0 else mean
        duration = exposure_s + 2.0  # exposure plus detector readout
        self.sleep(duration)
        return Diffractogram(
            sample_id=self.mounted,
            two_theta_deg=self.two_theta.copy(),
            counts=counts,
            energy_kev=energy,
            exposure_s=exposure_s,
            ring_current_ma=current,
            duration_s=duration + wait,
        )

    def close(self) -> None:
        """Nothing to release in simulation."""
