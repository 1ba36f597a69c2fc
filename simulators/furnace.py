"""A simulated box furnace: programmable ramp and dwell, interlock, thermocouple drift, cool-down."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from labos.core.errors import DeviceFault
from labos.devices.drivers import AnnealReport, InputSpec
from simulators.clock import Halted
from simulators.instrument import SimInstrument
from simulators.options import FurnaceOptions
from simulators.world import FaultPlan, SimWorld


class SimFurnace(SimInstrument):
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
        opts = FurnaceOptions.parse(options, name)
        super().__init__(name, world)
        self.station = opts.station or name
        self.max_temperature = opts.max_temperature_c
        self.max_ramp = opts.max_ramp_k_per_min
        self.cooling_tau = opts.cooling_tau_min
        self.faults = FaultPlan(name, self.FAULTS, opts.faults)
        self._lock = threading.Lock()
        self._heater, self._program = "off", "idle"
        self._program_of = (self.ROOM_C, 1.0)
        self._cool_from = (self.ROOM_C, 0.0)

    def inputs(self) -> list[InputSpec]:
        """Setpoint up to the interlock, dwell, ramp rate and atmosphere."""
        return [
            InputSpec("temperature", "real", low=self.ROOM_C, high=self.max_temperature, unit="degC", default=1000.0),
            InputSpec("dwell", "real", low=1.0, high=2880.0, unit="min", default=240.0),
            InputSpec("ramp_rate", "real", low=0.5, high=self.max_ramp, unit="K/min", default=10.0),
            InputSpec("atmosphere", "choice", choices=("air", "O2", "N2", "Ar"), default="air"),
        ]

    def max_simulated_s(self) -> float:
        """The slowest program within the limits, in simulated seconds.

        The hottest setpoint (plus drift) at the slowest ramp, the longest dwell, then the cool-down.
        """
        t_set = self.max_temperature + 40.0
        heat = (t_set - self.ROOM_C) / 0.5 * 60.0
        cool = self.cooling_tau * 60.0 * math.log(max((t_set - self.ROOM_C) / (self.UNLOAD_C - self.ROOM_C), 1.0))
        return heat + 2880.0 * 60.0 + cool

    def readback(self) -> dict[str, Any]:
        """The controller now: ``heater`` (``on``/``off``), ``program`` and ``temperature_c``."""
        with self._lock:
            return {"heater": self._heater, "program": self._program, "temperature_c": self._temperature()}

    def safe_state(self) -> None:
        """Heater off: the furnace cools naturally from where it is."""
        with self._lock:
            if self._heater == "on":
                self._cool_from = (self._temperature(), self.now())
            self._heater = "off"

    def _temperature(self) -> float:
        t0, now = self._cool_from[1], self.now()
        if self._heater == "on":
            return self._heating(now - t0)
        start = self._cool_from[0]
        return self.ROOM_C + (start - self.ROOM_C) * math.exp(-max(now - t0, 0.0) / (self.cooling_tau * 60.0))

    def _heating(self, elapsed: float) -> float:
        t_set, ramp = self._program_of
        return min(self.ROOM_C + ramp / 60.0 * elapsed, t_set)

    def anneal(self, sample_id: str, program: Mapping[str, Any]) -> AnnealReport:
        """Ramp, dwell, cool; log the control thermocouple every few minutes.

        A :meth:`stop` at any point switches the heater off (the safe state): the sample
        keeps the heat treatment it had and the action fails saying so.
        """
        self.begin("anneal")
        self.on_sample(sample_id)
        self.require(program, ("temperature", "dwell", "ramp_rate"))
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
        with self._lock:
            self._heater, self._program = "on", "running"
            self._program_of = (t_set, ramp)
            self._cool_from = (self.ROOM_C, self.now())

        def treat(temperature: float, minutes: float, note: str) -> None:
            try:
                state = landscape.anneal(
                    sample.state, {"temperature_c": temperature, "dwell_min": minutes, "ramp_k_per_min": ramp}
                )
            except ValueError:
                return
            self.world.book.update(sample_id, state, note)

        try:
            if drift:
                # actual = setpoint + offset while the control loop believes it holds the setpoint;
                # the over-temperature thermocouple sees the difference once the furnace is hot
                self.sleep(t_heat)
                actual = t_set + offset
                self.safe_state()
                self._program = "aborted"
                treat(actual, 0.0, f"partly annealed by {self.name} (aborted)")
                raise DeviceFault(
                    self.name,
                    f"{self.FAULTS['drift']}: control thermocouple reads {t_set:.0f} degC, safety thermocouple "
                    f"{actual:.0f} degC; program aborted (simulated drift)",
                    transient=True,
                )
            self.sleep(t_heat + t_dwell)
            self.safe_state()
            try:
                state = landscape.anneal(
                    sample.state, {"temperature_c": t_set, "dwell_min": dwell, "ramp_k_per_min": ramp}
                )
            except ValueError as exc:
                raise DeviceFault(self.name, str(exc)) from None
            self.sleep(t_cool)
        except Halted as halted:
            self.safe_state()
            reached = self._heating(min(halted.elapsed, t_heat))
            with self._lock:  # the clock moves on when a sleep ends: the furnace cools from where it stopped
                self._program, self._cool_from = "stopped", (reached, self.now())
            held = max(halted.elapsed - t_heat, 0.0) / 60.0
            treat(reached, min(held, dwell), f"partly annealed by {self.name} (stopped)")
            raise self.stopped(
                f"program stopped after {halted.elapsed / 60.0:.0f} min at {reached:.0f} degC; "
                "heater off, furnace cooling (safe state)"
            ) from None
        self._program = "done"
        duration = t_heat + t_dwell + t_cool
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
