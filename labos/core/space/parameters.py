"""The four kinds of parameter a search space holds, and the point and value types."""

from __future__ import annotations

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
    RealParameter | IntegerParameter | CategoricalParameter | CompositionParameter,
    Field(discriminator="type"),
]
