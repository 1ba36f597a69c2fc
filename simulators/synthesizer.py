"""A simulated synthesizer: a liquid handler (reservoirs, dispensing, heating) or a powder doser with a mill."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from labos.core.errors import DeviceFault, OptionError
from labos.core.space import ParamValue
from labos.devices.drivers import InputSpec, SynthesisReport
from simulators.instrument import SimInstrument, halts
from simulators.options import SynthesizerOptions
from simulators.world import FaultPlan, SimSample, SimWorld


class SimSynthesizer(SimInstrument):
    """Implements :class:`~labos.devices.drivers.SynthesizerDriver` on a :class:`SimWorld`.

    Options
    -------
    batch_volume_ml
        Volume of one batch; component fractions are dispensed as fractions of it.
    reservoir_ml
        Starting volume of every precursor reservoir (or a mapping per precursor).
    dispense_cv
        Relative standard deviation of each dispensed volume.
    ramp_k_per_min
        Heating rate of the reactor.
    output
        ``station/slot`` where finished samples are left for a robot (a powder doser's
        out-tray); by default samples stay in the flow line, reachable by every
        instrument plumbed to it.
    powder
        A gravimetric powder doser instead of a liquid handler (default: for powder
        landscapes): components are dosed as masses of ``batch_mass_mg`` (default 2000)
        from hoppers of ``hopper_g`` (default 100 g each, or a mapping), with the
        balance's noise ``balance_sd_mg`` (0.3) and a one-sided ``overshoot_mg`` (1.5).
    faults
        ``{fault: probability}``: ``jam`` (dispense needle), ``disconnect`` (controller),
        ``needle`` and ``stirrer`` (everyday transient faults; default
        ``simulation.fault_rate``).
    """

    FAULTS: ClassVar[dict[str, str]] = {
        "jam": "dispense needle jammed",
        "disconnect": "lost connection to the synthesizer controller",
        "needle": "dispense needle jammed (transient)",
        "stirrer": "reactor stirrer stalled",
    }
    EVERYDAY: ClassVar[tuple[str, ...]] = ("needle", "stirrer")

    def __init__(self, name: str, world: SimWorld, options: Mapping[str, Any]) -> None:
        opts = SynthesizerOptions.parse(options, name)
        super().__init__(name, world)
        self._inputs = world.landscape.inputs()
        components = [i.name for i in self._inputs if i.kind == "component"]
        self.batch_volume_ml = opts.batch_volume_ml
        self.reservoirs = _per_component(opts.reservoir_ml, components, name, "reservoir_ml")
        self.dispense_cv = opts.dispense_cv
        self.ramp = opts.ramp_k_per_min / 60.0
        self.powder = opts.powder if opts.powder is not None else world.landscape.name == "batio3-solid-state"
        self.batch_mass_mg = opts.batch_mass_mg
        hoppers_g = _per_component(opts.hopper_g, components, name, "hopper_g")
        self.hoppers_mg = {c: 1000.0 * g for c, g in hoppers_g.items()}
        self.balance_sd_mg = opts.balance_sd_mg
        self.overshoot_mg = opts.overshoot_mg
        self.output = opts.output
        everyday = dict.fromkeys(self.EVERYDAY, world.fault_rate)
        self.faults = FaultPlan(name, self.FAULTS, opts.faults, everyday)
        self._count = 0

    def inputs(self) -> list[InputSpec]:
        """The landscape's inputs (precursors, temperature, time, ligand)."""
        return list(self._inputs)

    @halts("dispensing and heating stopped, the batch discarded")
    def synthesize(self, sample_id: str, recipe: Mapping[str, ParamValue]) -> SynthesisReport:
        """Dispense, heat, react and quench; the simulated clock advances accordingly."""
        self.require(recipe)
        self.on_sample(sample_id, new=True)
        rng = self.world.rng_for(self.name, sample_id, "synthesize")
        self.faults.check("disconnect", rng)
        if self.output is not None and (there := self.world.book.at(self.output)) is not None:
            raise DeviceFault(self.name, f"output slot {self.output} still holds sample {there}: unload it first")
        self.faults.check("needle", rng)
        self.faults.check("jam", rng)
        executed: dict[str, ParamValue] = dict(recipe)
        log: list[str] = []
        duration = 0.0
        for comp in self.reservoirs:
            frac = float(recipe.get(comp, 0.0))
            if frac <= 0:
                executed[comp] = 0.0
                continue
            if self.powder:
                dt = self._dose(comp, frac, executed, log, rng)
            else:
                want = frac * self.batch_volume_ml
                if want > self.reservoirs[comp]:
                    raise DeviceFault(
                        self.name,
                        f"reservoir {comp} is empty: {self.reservoirs[comp]:.2f} mL left, {want:.2f} mL needed",
                    )
                got = max(want * (1.0 + self.dispense_cv * rng.normal()) + 0.002 * rng.normal(), 0.0)
                self.reservoirs[comp] -= got
                executed[comp] = got / self.batch_volume_ml
                log.append(f"dispensed {got * 1000:.0f} uL {comp}")
                dt = 8.0 + 12.0 * got  # aspirate, move, dispense
            self.sleep(dt)
            duration += dt
        total = sum(float(executed[c]) for c in self.reservoirs)
        for comp in self.reservoirs:
            executed[comp] = float(executed[comp]) / total
        if "temperature" in recipe:  # a hot-injection reactor
            target = float(recipe["temperature"])
            heat = abs(target - 25.0) / self.ramp
            self.sleep(heat)
            temp = target + 0.3 * rng.normal()
            executed["temperature"] = round(temp, 2)
            log.append(f"heated to {temp:.1f} degC in {heat:.0f} s")
            react = float(recipe["reaction_time"])
            self.faults.check("stirrer", rng)
            self.sleep(react)
            quench = 45.0
            self.sleep(quench)
            duration += heat + react + quench
        if "milling_time" in recipe:  # a ball mill
            mill = float(recipe["milling_time"]) * 60.0
            self.sleep(mill)
            duration += mill
            log.append(f"milled {mill / 60:.0f} min")
        landscape = self.world.landscape
        state = landscape.make(executed, rng)
        sample = SimSample(id=sample_id, landscape=landscape.name, state=state, location=self.output)
        sample.history.append(f"made by {self.name}" + (f", left at {self.output}" if self.output else ""))
        self.world.book.add(sample)
        self._count += 1
        return SynthesisReport(sample_id=sample_id, recipe=executed, duration_s=duration, log=tuple(log))

    def _dose(
        self, comp: str, frac: float, executed: dict[str, ParamValue], log: list[str], rng: np.random.Generator
    ) -> float:
        """Dose ``frac`` of the batch mass of powder ``comp`` onto the balance; returns the time taken.

        A gravimetric doser stops on the balance reading: the error is the balance's
        (``balance_sd_mg``) plus the last grains' overshoot (``overshoot_mg``, one-sided).
        """
        want = frac * self.batch_mass_mg
        if want > self.hoppers_mg[comp]:
            raise DeviceFault(
                self.name,
                f"hopper {comp} is empty: {self.hoppers_mg[comp] / 1000:.2f} g left, {want / 1000:.3f} g needed",
            )
        got = max(want + self.balance_sd_mg * rng.normal() + self.overshoot_mg * rng.exponential(), 0.0)
        self.hoppers_mg[comp] -= got
        executed[comp] = got / self.batch_mass_mg
        log.append(f"dosed {got:.1f} mg {comp} (target {want:.1f} mg)")
        return 20.0 + 0.05 * got  # tare, dose to the balance reading, settle

    def close(self) -> None:
        """Nothing to release in simulation."""


def _per_component(
    amount: float | Mapping[str, float], components: list[str], name: str, option: str
) -> dict[str, float]:
    """One amount per component: the same for all, or a mapping naming every component."""
    if not isinstance(amount, Mapping):
        return dict.fromkeys(components, float(amount))
    missing = [c for c in components if c not in amount]
    extra = sorted(set(amount) - set(components))
    if missing or extra:
        raise OptionError(
            f"instrument {name!r}: option {option}: give every component "
            f"({', '.join(components)}); missing {missing or 'none'}, unknown {extra or 'none'}",
            option=option,
        )
    return {c: float(amount[c]) for c in components}
