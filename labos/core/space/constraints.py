"""Linear constraints between parameters (``a + 2 b <= 1``), parsed from text and checked on points."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)\s*\*?\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*")


class LinearConstraint(BaseModel):
    """``sum(coefficients[p] * point[p]) <= bound`` (or ``>=``) over numeric parameters.

    Written in a campaign either as a mapping (``{coefficients: {a: 1, b: 2}, op: "<=",
    bound: 3}``) or as a string (``"a + 2*b <= 3"``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    coefficients: dict[str, float] = Field(min_length=1)
    op: Literal["<=", ">="] = "<="
    bound: float

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        m = re.fullmatch(r"(.+?)(<=|>=)\s*([+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)\s*", data)
        if m is None:
            raise ValueError(f"{data!r} is not 'a*x + b*y <= c' (or >=) with a number on the right")
        lhs, op, rhs = m.groups()
        coefficients: dict[str, float] = {}
        pos = 0
        while pos < len(lhs):
            t = _TERM.match(lhs, pos)
            if t is None or t.end() == pos or (pos > 0 and t.group(1) is None):
                raise ValueError(f"cannot read the linear expression {lhs.strip()!r} near {lhs[pos:].strip()!r}")
            sign = -1.0 if t.group(1) == "-" else 1.0
            coef = float(t.group(2)) if t.group(2) else 1.0
            coefficients[t.group(3)] = coefficients.get(t.group(3), 0.0) + sign * coef
            pos = t.end()
        return {"coefficients": coefficients, "op": op, "bound": float(rhs)}

    @field_validator("bound")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("the bound must be finite")
        return v

    def __str__(self) -> str:
        terms = " + ".join(f"{c:.12g}*{n}" for n, c in self.coefficients.items()).replace("+ -", "- ")
        return f"{terms} {self.op} {self.bound:.12g}"

    def value(self, point: Mapping[str, Any]) -> float:
        """The left-hand side at ``point``."""
        return sum(c * float(point[n]) for n, c in self.coefficients.items())

    def problem(self, point: Mapping[str, Any], tol: float = 1e-9) -> str | None:
        """Why ``point`` violates the constraint, or ``None``."""
        v = self.value(point)
        ok = v <= self.bound + tol if self.op == "<=" else v >= self.bound - tol
        return None if ok else f"constraint {self} violated ({v:g})"
