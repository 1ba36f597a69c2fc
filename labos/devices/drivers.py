"""Driver protocols: what an ophyd device in labos needs from the thing it controls.

A driver is the only code that talks to an instrument: a simulator in ``simulators/``,
a client of an instrument server, or real hardware. Device classes in
:mod:`labos.devices` speak to any object satisfying these protocols, so the same
device and the same Bluesky plan drive a simulator or a real instrument.

Drivers are blocking; devices run them off the RunEngine's event loop and report
completion through ophyd ``Status`` objects. Every driver has ``stop()``, callable from
another thread while an action runs: the action ends promptly (raising a
:class:`~labos.core.errors.DeviceFault` that says what state it left) and the
instrument goes to its safe state — heater off, arm halted, shutter closed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from labos.core.errors import OutOfBoundsError, shown
from labos.core.space import ParamValue


@dataclass(frozen=True)
class InputSpec:
    """One input an instrument accepts, with its hard limits.

    ``kind`` says how campaign parameters map on: a ``component`` is a reservoir whose
    amount comes from a composition parameter; ``real``, ``integer`` and ``choice`` are
    settings taken by name.
    """

    name: str
    kind: Literal["component", "real", "integer", "choice"]
    low: float | None = None
    high: float | None = None
    unit: str | None = None
    choices: tuple[str, ...] = ()
    default: ParamValue | None = None
    description: str = ""

    def __post_init__(self) -> None:
        # a limit that is NaN is no limit at all (v > nan is always False): refuse to exist
        for which in ("low", "high"):
            v = getattr(self, which)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
                raise ValueError(f"input {self.name!r}: limit {which}={v!r} is not a finite number")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"input {self.name!r}: low ({self.low:g}) is above high ({self.high:g})")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"input {self.name!r}: a choice needs at least one choice")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` breaks this input's limits, or ``None`` when it is acceptable."""
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return None
            return f"{shown(value)} is not one of {shown(list(self.choices), 300)}"
        if isinstance(value, bool | str) or not isinstance(value, int | float | np.integer | np.floating):
            return f"{shown(value)} is not a number"
        v = float(value)
        if not np.isfinite(v):
            return f"{value!r} is not finite"
        if self.kind == "integer" and v != round(v):
            return f"{v:g} is not a whole number"
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and v < self.low:
            return f"{v:g}{unit} is below the limit {self.low:g}{unit}"
        if self.high is not None and v > self.high:
            return f"{v:g}{unit} is above the limit {self.high:g}{unit}"
        return None


def check_values(instrument: str, inputs: Iterable[InputSpec], values: Mapping[str, Any]) -> None:
    """Check ``values`` against the declared inputs: every name known, every value within its limits.

    The one check every layer runs before an instrument acts: the ophyd device, the
    instrument server (again, before it calls its driver) and the simulators.

    Raises
    ------
    OutOfBoundsError
        Naming the instrument, the input, the limit and the value.
    """
    specs = {i.name: i for i in inputs}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(specs)
            raise OutOfBoundsError(f"{instrument}: unknown input {shown(name)}; accepted: {known}")
        if (problem := spec.problem(value)) is not None:
            raise OutOfBoundsError(f"{instrument}: {name} = {problem}")


def action_inputs(method: str, args: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """The declared inputs a driver action's arguments set, by input name (empty for other calls).

    ``anneal(sample, program)`` sets the program's inputs, ``move("energy", 17)`` sets
    ``energy``, ``acquire(10)`` sets ``exposure``, ``pick(slot)`` sets ``from``: what an
    instrument server checks against the driver's limits before it calls the driver.
    """
    if method in ("synthesize", "anneal") and len(args) == 2 and isinstance(args[1], Mapping):
        return dict(args[1])
    if method == "measure" and args:
        return {"integration_time": args[0], **({"mode": args[1]} if len(args) > 1 else {})}
    if method == "pick" and args:
        return {"from": args[0]}
    if method in ("place", "reserve") and args:
        return {"to": args[0]}
    if method == "move" and len(args) == 2:
        return {str(args[0]): args[1]}
    if method == "acquire" and args:
        return {"exposure": args[0]}
    return {}


@dataclass(frozen=True)
class SynthesisReport:
    """What a synthesizer reports after making a sample."""

    sample_id: str
    recipe: dict[str, ParamValue]
    """The recipe as executed (dispensed amounts include the dispensing error)."""
    duration_s: float
    """Instrument time taken, in (simulated or real) seconds."""
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spectrum:
    """A spectrum of one sample: absorbance, or photoluminescence (``mode="pl"``) in ``emission``."""

    sample_id: str
    wavelength_nm: NDArray[np.float64]
    absorbance: NDArray[np.float64]
    integration_time_s: float
    duration_s: float
    meta: dict[str, Any] = field(default_factory=dict)
    mode: str = "absorbance"
    emission: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Photoluminescence counts per wavelength (``mode="pl"``; empty otherwise)."""


@dataclass(frozen=True)
class AnnealReport:
    """What a furnace reports after a heat treatment."""

    sample_id: str
    setpoint_c: float
    dwell_min: float
    ramp_k_per_min: float
    time_s: NDArray[np.float64]
    """Times of the logged temperature profile (from the start of the program)."""
    temperature_c: NDArray[np.float64]
    """The control thermocouple's readings at ``time_s``."""
    duration_s: float
    """Ramp, dwell and cool-down to the unload temperature."""
    atmosphere: str = "air"


@dataclass(frozen=True)
class Diffractogram:
    """A powder diffraction pattern from an area detector, azimuthally integrated."""

    sample_id: str
    two_theta_deg: NDArray[np.float64]
    counts: NDArray[np.float64]
    energy_kev: float
    exposure_s: float
    ring_current_ma: float
    duration_s: float


@runtime_checkable
class SynthesizerDriver(Protocol):
    """A liquid-handling synthesizer: dispense precursors, heat, react."""

    def inputs(self) -> list[InputSpec]:
        """Inputs the instrument accepts, with their limits."""
        ...

    def synthesize(self, sample_id: str, recipe: Mapping[str, ParamValue]) -> SynthesisReport:
        """Make sample ``sample_id`` from ``recipe``; blocks until done.

        Raises :class:`~labos.core.errors.DeviceFault` on instrument faults.
        """
        ...

    def stop(self) -> None:
        """Halt the running action (from any thread) and go to the safe state."""
        ...

    def close(self) -> None:
        """Release the instrument."""
        ...


@runtime_checkable
class SpectrometerDriver(Protocol):
    """A UV-vis absorbance spectrometer with a sample changer."""

    def inputs(self) -> list[InputSpec]:
        """Settings the instrument accepts (e.g. integration time), with limits."""
        ...

    def load(self, sample_id: str) -> float:
        """Load a sample into the beam; returns the time it took in seconds."""
        ...

    def measure(self, integration_time_s: float, mode: str = "absorbance") -> Spectrum:
        """Measure the loaded sample (``absorbance``, or ``pl``: photoluminescence); blocks until done."""
        ...

    def stop(self) -> None:
        """Halt the running action (from any thread) and go to the safe state."""
        ...

    def close(self) -> None:
        """Release the instrument."""
        ...


@runtime_checkable
class RobotDriver(Protocol):
    """A robot arm that carries samples between named station slots (``station/slot``)."""

    def inputs(self) -> list[InputSpec]:
        """``from`` and ``to`` as choices of slots (``station/*``: the first free slot of a rack)."""
        ...

    def occupancy(self) -> dict[str, str | None]:
        """Every slot the arm reaches, with the sample in it (or ``None``)."""
        ...

    def holding(self) -> str | None:
        """The sample in the gripper, if any."""
        ...

    def reserve(self, slot: str, sample_id: str) -> str:
        """Claim ``slot`` (``station/*``: a rack's first free slot) for ``sample_id`` in one step; the slot.

        The check that a target is free and the claim on it are one atomic step, shared
        by every arm (and process) that can reach the slot: two transfers cannot both
        find it free. The claim ends when the sample arrives or on :meth:`release`.
        Raises :class:`~labos.core.errors.InterlockError` if it holds or is claimed for
        another sample.
        """
        ...

    def release(self, slot: str, sample_id: str) -> None:
        """Give up ``sample_id``'s claim on ``slot`` (a transfer that failed before placing)."""
        ...

    def pick(self, slot: str) -> float:
        """Pick the sample at ``slot``; returns the time taken (s)."""
        ...

    def place(self, slot: str) -> float:
        """Place the held sample at ``slot``; returns the time taken (s)."""
        ...

    def stop(self) -> None:
        """Halt the running action (from any thread) and go to the safe state."""
        ...

    def close(self) -> None:
        """Release the instrument."""
        ...


@runtime_checkable
class FurnaceDriver(Protocol):
    """A box or tube furnace with a programmable controller and an over-temperature interlock."""

    def inputs(self) -> list[InputSpec]:
        """Setpoint (its high limit is the interlock), dwell, ramp rate, atmosphere."""
        ...

    def anneal(self, sample_id: str, program: Mapping[str, Any]) -> AnnealReport:
        """Run ``program`` (``temperature``, ``dwell``, ``ramp_rate``, ``atmosphere``) on the loaded sample.

        Blocks through heating, dwell and cool-down.
        """
        ...

    def readback(self) -> dict[str, Any]:
        """The controller now: ``{"heater": "on" | "off", "program", "temperature_c"}``."""
        ...

    def stop(self) -> None:
        """Halt the running action (from any thread) and go to the safe state."""
        ...

    def close(self) -> None:
        """Release the instrument."""
        ...


@runtime_checkable
class BeamlineDriver(Protocol):
    """An X-ray diffraction beamline: monochromator, slits, shutter, sample stage, area detector."""

    def inputs(self) -> list[InputSpec]:
        """Energy (keV), slit gaps (mm) and exposure (s), with limits."""
        ...

    def move(self, axis: str, value: float) -> float:
        """Move ``energy``, ``slit_h`` or ``slit_v``; returns the readback."""
        ...

    def shutter(self, open_: bool) -> str:
        """Open or close the photon shutter; returns ``open`` or ``closed``."""
        ...

    def beam(self) -> dict[str, Any]:
        """``{"ring_current_ma", "shutter", "energy_kev", "slit_h", "slit_v"}`` now."""
        ...

    def mount(self, sample_id: str) -> float:
        """Centre the sample on the stage in the beam; returns the time taken (s)."""
        ...

    def acquire(self, exposure_s: float) -> Diffractogram:
        """Expose the mounted sample; the shutter must be open."""
        ...

    def stop(self) -> None:
        """Halt the running action (from any thread) and go to the safe state."""
        ...

    def close(self) -> None:
        """Release the instrument."""
        ...


@dataclass
class DriverContext:
    """What a driver factory is given besides its own options.

    ``resources`` is shared by every driver built for one lab, so that, for example,
    simulated instruments share one simulated world.
    """

    seed: int
    simulation: dict[str, Any]
    resources: dict[str, Any] = field(default_factory=dict)
    data_dir: Path | None = None
    """The campaign's data directory (where the instrument registry lives)."""
    run_key: str | None = None
    """The campaign's id: simulated drivers key their noise by sample id relative to it."""
    check_only: bool = False
    """Built only to check a campaign (``labos validate``): create and write nothing, no file, no store."""
    identities: dict[str, str] = field(default_factory=dict)
    """What each instrument is beyond this lab, by local name, where others can reach it too
    (``registry:NAME``, ``zmq:ENDPOINT#NAME``, ``epics:PREFIX``, ``sim:WORLD#NAME``): the key its
    reservations are made under (:mod:`labos.data.reservations`). An instrument not named here is
    the lab's own."""

    def close(self) -> None:
        """Close the shared resources that have a ``close`` (a simulated world's sample book, say).

        Problems are warned about, not raised: closing must not hide the caller's own outcome.
        """
        for key, resource in self.resources.items():
            closer = getattr(resource, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception as exc:  # noqa: BLE001
                    warnings.warn(f"closing {key!r} failed: {exc}", stacklevel=2)


class DriverFactory(Protocol):
    """Entry point ``labos.drivers``: builds a driver for an instrument."""

    def __call__(self, kind: str, name: str, options: Mapping[str, Any], context: DriverContext) -> Any:
        """Build the driver of instrument ``name`` of ``kind``."""
        ...
