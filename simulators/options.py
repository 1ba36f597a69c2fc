"""The options of every simulated instrument, as pydantic models with physical bounds.

An option is the simulated hardware's own configuration (a furnace's interlock, a
detector's axis, a rack's size): every number must be finite and inside what such an
instrument could have, and everything derived from the options (the points of a
wavelength axis, the slots of a rack) is bounded, so that no campaign or server file
can switch an interlock off with a NaN or make a simulator allocate gigabytes.
A bad option is an :class:`~labos.core.errors.OptionError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from labos.core.errors import OptionError, shown

M = TypeVar("M", bound="SimOptions")

MAX_AXIS_POINTS = 100_000
"""The most points a simulated detector axis may have (a 0.001-degree step over 100 degrees)."""
MAX_SLOTS = 10_000
"""The most slots one simulated robot may reach."""
NAME = r"^[A-Za-z0-9_.-]+$"
SLOT = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Faults = dict[str, Rate]


class SimOptions(BaseModel):
    """Base of the option models: no unknown option, every number finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    faults: Faults = Field(default_factory=dict, description="{fault: probability per action}")

    @classmethod
    def parse(cls: type[M], options: Mapping[str, Any], instrument: str) -> M:
        """Validate ``options``; the error names the first bad option and says why.

        Raises
        ------
        OptionError
            With ``option`` set to the dotted name of the bad option.
        """
        try:
            return cls.model_validate(dict(options))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in _present(options, err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(cls.model_fields))
                msg = f"unknown option for the simulated {cls.kind()} (options: {allowed})"
            elif "input" in err and not isinstance(err["input"], dict | list):
                msg = f"{msg} (got {shown(err['input'])})"
            more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
            raise OptionError(f"instrument {instrument!r}: option {loc}: {msg}{more}", option=loc) from None

    @classmethod
    def kind(cls) -> str:
        """What the options configure, for messages."""
        return cls.__name__.removesuffix("Options").lower()


def _present(data: Any, loc: tuple[Any, ...]) -> list[Any]:
    """The parts of a pydantic error location that exist in ``data`` (drops union tags like ``constrained-int``)."""
    out, cur = [], data
    for i, part in enumerate(loc):
        if (isinstance(cur, Mapping) and part in cur) or (
            isinstance(cur, list | tuple) and isinstance(part, int) and 0 <= part < len(cur)
        ):
            out.append(part)
            cur = cur[part]
        elif i == 0:
            out.append(part)  # a missing or unknown top-level option
    return out


def _axis(v: tuple[float, float, float], low: float, high: float, unit: str) -> tuple[float, float, float]:
    start, stop, step = v
    if not low <= start < stop <= high:
        raise ValueError(f"[start, stop, step] must have {low:g} <= start < stop <= {high:g} {unit}")
    if step <= 0:
        raise ValueError("the step must be positive")
    points = (stop - start) / step + 1
    if points > MAX_AXIS_POINTS:
        raise ValueError(f"{points:,.0f} points; at most {MAX_AXIS_POINTS:,} (make the step larger)")
    return v


class FurnaceOptions(SimOptions):
    """Options of the simulated box furnace."""

    station: str | None = Field(default=None, pattern=NAME)
    max_temperature_c: float = Field(default=1400.0, gt=25.0, le=3000.0)
    max_ramp_k_per_min: float = Field(default=20.0, gt=0.5, le=100.0)
    cooling_tau_min: float = Field(default=45.0, gt=0.0, le=10_000.0)


class BeamlineOptions(SimOptions):
    """Options of the simulated diffraction beamline."""

    station: str | None = Field(default=None, pattern=NAME)
    two_theta_deg: tuple[float, float, float] = (5.0, 45.0, 0.025)
    energy_kev: tuple[float, float] = (5.0, 30.0)
    flux: float = Field(default=2.0e4, gt=0.0, le=1e12)
    resolution_deg: float = Field(default=0.03, gt=0.0, le=5.0)
    refill_min: float = Field(default=20.0, ge=0.0, le=1440.0)

    @field_validator("two_theta_deg")
    @classmethod
    def _two_theta(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        return _axis(v, 0.0, 180.0, "degrees")

    @field_validator("energy_kev")
    @classmethod
    def _energy(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 1.0 <= v[0] < v[1] <= 200.0:
            raise ValueError("[low, high] must have 1 <= low < high <= 200 keV")
        return v


class SpectrometerOptions(SimOptions):
    """Options of the simulated UV-vis / photoluminescence spectrometer."""

    station: str | None = Field(default=None, pattern=NAME)
    wavelength_nm: tuple[float, float, float] = (300.0, 800.0, 1.0)
    noise_absorbance: float = Field(default=0.002, ge=0.0, le=1.0)
    averages: int = Field(default=10, ge=1, le=10_000)
    pl_counts_per_s: float = Field(default=2.0e5, gt=0.0, le=1e12)

    @field_validator("wavelength_nm")
    @classmethod
    def _wavelength(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        return _axis(v, 100.0, 3000.0, "nm")


Amount = Annotated[float, Field(ge=0.0, le=1e6)]


class SynthesizerOptions(SimOptions):
    """Options of the simulated synthesizer (liquid handler or powder doser)."""

    batch_volume_ml: float = Field(default=2.0, gt=0.0, le=1000.0)
    reservoir_ml: Amount | dict[str, Amount] = 250.0
    dispense_cv: float = Field(default=0.01, ge=0.0, le=0.5)
    ramp_k_per_min: float = Field(default=20.0, gt=0.0, le=1000.0)
    powder: bool | None = None
    batch_mass_mg: float = Field(default=2000.0, gt=0.0, le=1e6)
    hopper_g: Amount | dict[str, Amount] = 100.0
    balance_sd_mg: float = Field(default=0.3, ge=0.0, le=1000.0)
    overshoot_mg: float = Field(default=1.5, ge=0.0, le=1000.0)
    output: str | None = Field(default=None, pattern=SLOT)


class RobotOptions(SimOptions):
    """Options of the simulated robot arm."""

    stations: dict[Annotated[str, Field(pattern=NAME)], Annotated[int, Field(ge=1, le=1000)] | list[str]] = Field(
        min_length=1
    )
    positions: dict[str, tuple[float, float, float]] = Field(default_factory=dict)
    speed_m_per_s: float = Field(default=0.25, gt=0.0, le=10.0)

    @field_validator("stations", mode="before")
    @classmethod
    def _stations_map(cls, v: Any) -> Any:
        if not isinstance(v, Mapping):
            raise ValueError("must map station names to slot lists (or rack sizes), e.g. {furnace: [boat1], rack: 24}")
        return v

    @model_validator(mode="after")
    def _slots(self) -> RobotOptions:
        total = 0
        for station, slots in self.stations.items():
            if isinstance(slots, int):
                total += slots
                continue
            if not slots:
                raise ValueError(f"stations.{station}: give at least one slot")
            for slot in slots:
                if not isinstance(slot, str) or "/" in slot or "*" in slot or not slot:
                    raise ValueError(f"stations.{station}: slot {shown(slot)} must be a name without '/' or '*'")
            total += len(slots)
        if total > MAX_SLOTS:
            raise ValueError(f"stations: {total:,} slots; a robot reaches at most {MAX_SLOTS:,}")
        unknown = sorted(set(self.positions) - set(self.stations))
        if unknown:
            raise ValueError(f"positions: no station {', '.join(unknown)} (stations: {', '.join(self.stations)})")
        for station, xyz in self.positions.items():
            if any(abs(c) > 100.0 for c in xyz):
                raise ValueError(f"positions.{station}: coordinates are metres within 100 m of the base")
        return self
