"""A simulated box furnace: programmable ramp and dwell, interlock, thermocouple drift, cool-down."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from labos.core.errors import DeviceFault
from labos.devices.drivers import AnnealReport, InputSpec
from simulators.world import FaultPlan, SimWorld


class SimFurnace:
    """Implements :class:`~labos.devices.drivers.FurnaceDriver` on a :class:`SimWorld`.

    Options
    -------
    station
        Robot station of the furnace's sample boats (default: the instrument's name);
        only a sample placed there can be annealed.
    max_temperature_c
        The over-temperature interlock; setpoints above it are refused.
    max_ramp_k_per_min
        Fastest ramp the elements allow.
    cooling_tau_min
        Time constant of natural cooling (the sample is unloaded below 100 degC).
    faults
        ``{fault: probability}``: ``drift`` (the control thermocouple drifts; the
        independent over-temperature thermocouple catches it and aborts the program),
        ``disconnect`` (controller).
    """

    FAULTS: ClassVar[dict[str, str]] = {
        "drift": "thermocouple drift",
        "disconnect": "lost connection to the furnace controller",
    }
    UNLOAD_C = 100.0
    ROOM_C = 25.0

    def __init__(self, name: str, world: SimWorld, options: Mapping[str, Any]) -> None:
        opts = dict(options)
        self.name = name
        self.world = world
        self.station = str(opts.pop("station", name))
        self.max_temperature = float(opts.pop("max_temperature_c", 1400.0))
        self.max_ramp = float(opts.pop("max_ramp_k_per_min", 20.0))
        self.cooling_tau = float(opts.pop("cooling_tau_min", 45.0))
        self.faults = FaultPlan(name, self.FAULTS, opts.pop("faults", None))
        if opts:
            raise ValueError(f"unknown option(s) for the simulated furnace: {', '.join(sorted(opts))}")

    def inputs(self) -> list[InputSpec]:
        """Setpoint up to the interlock, dwell, ramp rate and atmosphere."""
        return [
            InputSpec("temperature", "real", low=self.ROOM_C, high=self.max_temperature, unit="degC", default=1000.0),
            InputSpec("dwell", "real", low=1.0, high=2880.0, unit="min", default=240.0),
            InputSpec("ramp_rate", "real", low=0.5, high=self.max_ramp, unit="K/min", default=10.0),
            InputSpec("atmosphere", "choice", choices=("air", "O2", "N2", "Ar"), default="air"),
        ]

    def anneal(self, sample_id: str, program: Mapping[str, Any]) -> AnnealReport:
        """Ramp, dwell, cool; log the control thermocouple every few minutes."""
        rng = self.world.rng_for(self.name, sample_id, "anneal")
        self.faults.check("disconnect", rng)
        sample = self.world.sample(self.name, sample_id)
        if sample.location is None or not sample.location.startswith(self.station + "/"):
            raise DeviceFault(
                self.name, f"sample {sample_id!r} is at {sample.location or 'the flow line'}, not in {self.station}"
            )
        t_set = float(program["temperature"])
        dwell = float(program["dwell"])
        ramp = float(program["ramp_rate"])
        if t_set > self.max_temperature:  # the controller's own interlock, behind the device's check
            raise DeviceFault(
                self.name, f"interlock: setpoint {t_set:g} degC above the {self.max_temperature:g} degC limit"
            )
        landscape = self.world.landscape_of(sample)
        drift = self.faults.happens("drift", rng)
        offset = float(rng.choice([-1.0, 1.0]) * rng.uniform(12.0, 40.0)) if drift else 0.0
        t_heat = (t_set - self.ROOM_C) / ramp * 60.0
        t_dwell = dwell * 60.0
        t_cool = self.cooling_tau * 60.0 * math.log(max((t_set - self.ROOM_C) / (self.UNLOAD_C - self.ROOM_C), 1.0))
        times = np.arange(0.0, t_heat + t_dwell + t_cool, 120.0)
        profile = np.where(
            times < t_heat,
            self.ROOM_C + ramp / 60.0 * times,
            np.where(
                times < t_heat + t_dwell,
                t_set,
                self.ROOM_C + (t_set - self.ROOM_C) * np.exp(-(times - t_heat - t_dwell) / (self.cooling_tau * 60.0)),
            ),
        )
        readings = profile + rng.normal(0.0, 0.8, size=profile.shape)  # what the control thermocouple logs
        if drift:
            # actual = setpoint + offset while the control loop believes it holds the setpoint;
            # the over-temperature thermocouple sees the difference once the furnace is hot
            self.world.clock.sleep(t_heat)
            actual = t_set + offset
            try:
                state = landscape.anneal(
                    sample.state, {"temperature_c": actual, "dwell_min": 0.0, "ramp_k_per_min": ramp}
                )
                self.world.book.update(sample_id, state, f"partly annealed by {self.name} (aborted)")
            except ValueError:
                pass
            raise DeviceFault(
                self.name,
                f"{self.FAULTS['drift']}: control thermocouple reads {t_set:.0f} degC, safety thermocouple "
                f"{actual:.0f} degC; program aborted (simulated drift)",
                transient=True,
            )
        try:
            state = landscape.anneal(sample.state, {"temperature_c": t_set, "dwell_min": dwell, "ramp_k_per_min": ramp})
        except ValueError as exc:
            raise DeviceFault(self.name, str(exc)) from None
        duration = t_heat + t_dwell + t_cool
        self.world.clock.sleep(duration)
        self.world.book.update(
            sample_id, state, f"annealed by {self.name}: {t_set:g} degC, {dwell:g} min, {ramp:g} K/min"
        )
        return AnnealReport(
            sample_id=sample_id,
            setpoint_c=t_set,
            dwell_min=dwell,
            ramp_k_per_min=ramp,
            time_s=times,
            temperature_c=readings,
            duration_s=duration,
            atmosphere=str(program.get("atmosphere", "air")),
        )

    def close(self) -> None:
        """Nothing to release in simulation."""
