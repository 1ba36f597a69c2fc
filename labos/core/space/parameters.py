"""The five kinds of parameter a search space holds, and the point and value types."""

from __future__ import annotations

import itertools
import math
import re
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labos.core.space.constraints import _fmt

ParamValue: TypeAlias = float | int | str


Point: TypeAlias = dict[str, ParamValue]


NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


COMPOSITION_RTOL = 1e-6


def _check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ValueError(f"name {name!r} must start with a letter or '_' and hold only letters, digits and '_'")
    return name


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None


class RealParameter(_Param):
    """A continuous parameter in ``[low, high]``."""

    type: Literal["real"] = "real"
    low: float
    high: float
    log: bool = False
    unit: str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RealParameter:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low ({self.low}) and high ({self.high}) must be finite")
        if not self.high > self.low:
            raise ValueError(f"high ({_fmt(self.high)}) must be greater than low ({_fmt(self.low)})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale parameter needs low > 0, got low = {_fmt(self.low)}")
        return self

    def unit_coordinate(self, v: float) -> float:
        """The unit-cube coordinate of the number ``v`` (log scale with ``log``; not clipped)."""
        if self.log:
            return (math.log(v) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (v - self.low) / (self.high - self.low)


class IntegerParameter(_Param):
    """An integer parameter in ``[low, high]`` (both included)."""

    type: Literal["integer"] = "integer"
    low: int
    high: int
    log: bool = False
    unit: str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> IntegerParameter:
        if not self.high > self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale parameter needs low > 0, got low = {self.low}")
        return self

    def unit_coordinate(self, v: int) -> float:
        """The centre of the integer ``v``'s cell of the unit cube (cells equal on the log scale with ``log``)."""
        if self.log:
            lo, hi = math.log(self.low - 0.5 + 1e-9), math.log(self.high + 0.5)
            return (math.log(v) - lo) / (hi - lo)
        return (v - self.low + 0.5) / (self.high - self.low + 1)


DISCRETE_RTOL = 1e-9
"""A number within this relative distance of a level of a :class:`DiscreteParameter` is that level."""


def _same_level(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=DISCRETE_RTOL, abs_tol=1e-12)


class DiscreteParameter(_Param):
    """A number that takes only the listed values: levels an instrument can make (amounts, setpoints).

    Unlike a categorical, the values are ordered and spaced: a model sees where each lies
    between the smallest and the largest (on a log scale with ``log``), so a trend across
    levels carries over. Unlike a real, nothing between the levels is ever proposed. The
    values are kept sorted; all integers stay integers, otherwise all are floats.
    """

    type: Literal["discrete"] = "discrete"
    values: list[int | float] = Field(min_length=2)
    log: bool = False
    unit: str | None = None

    @field_validator("values")
    @classmethod
    def _values(cls, v: list[int | float]) -> list[int | float]:
        bad = [x for x in v if isinstance(x, bool) or not math.isfinite(x)]
        if bad:
            raise ValueError(f"values must be finite numbers, got {', '.join(map(repr, bad))}")
        out = sorted(v) if all(isinstance(x, int) for x in v) else sorted(float(x) for x in v)
        dupes = sorted({_fmt(a) for a, b in itertools.pairwise(out) if _same_level(a, b)})
        if dupes:
            raise ValueError(f"value(s) listed more than once: {', '.join(dupes)}")
        return out

    @model_validator(mode="after")
    def _log(self) -> DiscreteParameter:
        if self.log and self.values[0] <= 0:
            raise ValueError(f"a log-scale parameter needs values > 0, got {_fmt(self.values[0])}")
        return self

    @property
    def low(self) -> int | float:
        """The smallest value."""
        return self.values[0]

    @property
    def high(self) -> int | float:
        """The largest value."""
        return self.values[-1]

    def level(self, v: float) -> int | None:
        """The index of the level the number ``v`` equals (within :data:`DISCRETE_RTOL`), or None."""
        return next((i for i, x in enumerate(self.values) if _same_level(float(v), x)), None)

    def position(self, v: float) -> float:
        """Where ``v`` lies between the smallest and the largest value, in ``[0, 1]`` (log scale with ``log``)."""
        f = math.log if self.log else float
        return (f(v) - f(self.low)) / (f(self.high) - f(self.low))

    def nearest(self, v: float) -> int | float:
        """The value closest to the number ``v`` (on the parameter's scale)."""
        if self.log and v <= 0:
            return self.low
        u = self.position(v)
        return min(self.values, key=lambda x: abs(self.position(x) - u))


class CategoricalParameter(_Param):
    """One of a finite list of choices."""

    type: Literal["categorical"] = "categorical"
    choices: list[str | int | float] = Field(min_length=2)

    @field_validator("choices")
    @classmethod
    def _unique(cls, v: list[str | int | float]) -> list[str | int | float]:
        seen = set()
        for c in v:
            if c in seen:
                raise ValueError(f"choice {c!r} appears more than once")
            seen.add(c)
        return v


class CompositionParameter(_Param):
    """Component amounts that are non-negative and sum to ``total``."""

    type: Literal["composition"] = "composition"
    components: list[str] = Field(min_length=2)
    total: float = 1.0
    unit: str | None = None

    @field_validator("components")
    @classmethod
    def _components(cls, v: list[str]) -> list[str]:
        for c in v:
            _check_name(c)
        dupes = sorted({c for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"components listed more than once: {', '.join(dupes)}")
        return v

    @field_validator("total")
    @classmethod
    def _total(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"total ({v}) must be a positive number")
        return v


Parameter: TypeAlias = Annotated[
    RealParameter | IntegerParameter | DiscreteParameter | CategoricalParameter | CompositionParameter,
    Field(discriminator="type"),
]
