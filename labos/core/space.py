"""Search spaces: the named parameters a campaign may vary.

A space maps parameter names to definitions. Four kinds exist:

* ``real``: a float in ``[low, high]``, optionally on a log scale, with a unit;
* ``integer``: an int in ``[low, high]``;
* ``categorical``: one of a list of choices;
* ``composition``: several components whose amounts are non-negative and sum to
  ``total`` (a simplex). Each component becomes a parameter of its own name.

Points are plain mappings ``{name: value}`` (never positional vectors). Every space
also has a bijection to the unit cube (:meth:`SearchSpace.from_unit`), which the
generic planners use: the composition simplex is mapped by stick-breaking so that a
uniform cube sample is a uniform simplex sample.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, RootModel, field_validator, model_validator

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
        terms = " + ".join(f"{c:g}*{n}" for n, c in self.coefficients.items()).replace("+ -", "- ")
        return f"{terms} {self.op} {self.bound:g}"

    def value(self, point: Mapping[str, Any]) -> float:
        """The left-hand side at ``point``."""
        return sum(c * float(point[n]) for n, c in self.coefficients.items())

    def problem(self, point: Mapping[str, Any], tol: float = 1e-9) -> str | None:
        """Why ``point`` violates the constraint, or ``None``."""
        v = self.value(point)
        ok = v <= self.bound + tol if self.op == "<=" else v >= self.bound - tol
        return None if ok else f"constraint {self} violated ({v:g})"


class SearchSpace(RootModel[dict[str, Parameter]]):
    """A mapping of parameter names to parameter definitions, plus optional linear constraints.

    Constraints are attached with :meth:`with_constraints` (a campaign does this from
    its ``constraints`` section); :meth:`problems` and :meth:`feasible` honour them.
    """

    model_config = ConfigDict(frozen=True)
    _constraints: tuple[LinearConstraint, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _names(self) -> SearchSpace:
        if not self.root:
            raise ValueError("the search space needs at least one parameter")
        for name in self.root:
            _check_name(name)
        seen: dict[str, str] = {}
        for name, p in self.root.items():
            flat = p.components if isinstance(p, CompositionParameter) else [name]
            for f in flat:
                if f in seen:
                    raise ValueError(f"parameter name {f!r} is used by both {seen[f]!r} and {name!r}")
                seen[f] = name
        return self

    # ------------------------------------------------------------ constraints
    @property
    def constraints(self) -> tuple[LinearConstraint, ...]:
        """The linear constraints points must satisfy."""
        return self._constraints

    def constraint_problems(self, constraints: Sequence[LinearConstraint]) -> list[str]:
        """Why ``constraints`` cannot apply to this space (unknown or non-numeric parameters)."""
        numeric = {
            f
            for name, p in self.root.items()
            for f in (p.components if isinstance(p, CompositionParameter) else [name])
            if not isinstance(p, CategoricalParameter)
        }
        msgs = []
        for i, c in enumerate(constraints):
            bad = sorted(set(c.coefficients) - numeric)
            if bad:
                msgs.append(f"constraints[{i}]: {', '.join(bad)} not numeric parameters of the space")
        return msgs

    def with_constraints(self, constraints: Sequence[LinearConstraint]) -> SearchSpace:
        """A copy of this space that also requires ``constraints``."""
        problems = self.constraint_problems(constraints)
        if problems:
            raise ValueError("; ".join(problems))
        out = self.model_copy()
        # a RootModel's copy shares its private-attribute dict with the original: give the
        # copy its own, or the original would silently gain the constraints too
        object.__setattr__(out, "__pydantic_private__", dict(self.__pydantic_private__ or {}))
        out._constraints = tuple(constraints)
        return out

    def feasible(self, point: Mapping[str, Any]) -> bool:
        """Whether ``point`` satisfies every constraint (bounds are :meth:`problems`' business)."""
        return all(c.problem(point) is None for c in self._constraints)

    # ------------------------------------------------------------------ shape
    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.root)

    def items(self) -> list[tuple[str, Any]]:
        """The ``(name, definition)`` pairs in declaration order."""
        return list(self.root.items())

    @property
    def names(self) -> list[str]:
        """Flat parameter names as they appear in a point (components expanded)."""
        out: list[str] = []
        for name, p in self.root.items():
            out.extend(p.components if isinstance(p, CompositionParameter) else [name])
        return out

    @property
    def unit_dim(self) -> int:
        """Dimension of the unit cube this space maps from."""
        return sum(len(p.components) - 1 if isinstance(p, CompositionParameter) else 1 for p in self.root.values())

    # ---------------------------------------------------------- unit mapping
    def from_unit(self, u: Sequence[float] | NDArray[np.float64]) -> Point:
        """Map a point of the unit cube ``[0, 1]^unit_dim`` to a point of the space."""
        arr = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if arr.shape != (self.unit_dim,):
            raise ValueError(f"expected {self.unit_dim} unit coordinates, got shape {arr.shape}")
        u = arr
        out: Point = {}
        i = 0
        for name, p in self.root.items():
            if isinstance(p, CompositionParameter):
                k = len(p.components)
                out.update(zip(p.components, stick_break(u[i : i + k - 1], p.total), strict=True))
                i += k - 1
                continue
            x = float(u[i])
            i += 1
            if isinstance(p, RealParameter):
                if p.log:
                    v = math.exp(math.log(p.low) + x * (math.log(p.high) - math.log(p.low)))
                else:
                    v = p.low + x * (p.high - p.low)
                out[name] = min(max(v, p.low), p.high)
            elif isinstance(p, IntegerParameter):
                if p.log:
                    lo, hi = math.log(p.low - 0.5 + 1e-9), math.log(p.high + 0.5)
                    iv = round(math.exp(lo + x * (hi - lo)))
                else:
                    iv = math.floor(p.low + x * (p.high - p.low + 1))
                out[name] = int(min(max(iv, p.low), p.high))
            else:
                n = len(p.choices)
                out[name] = p.choices[min(int(x * n), n - 1)]
        return out

    def to_unit(self, point: Mapping[str, ParamValue]) -> NDArray[np.float64]:
        """Inverse of :meth:`from_unit` (integers and categories map to cell centres)."""
        u: list[float] = []
        for name, p in self.root.items():
            if isinstance(p, CompositionParameter):
                u.extend(stick_unbreak([float(point[c]) for c in p.components], p.total))
            elif isinstance(p, RealParameter):
                v = float(point[name])
                if p.log:
                    u.append((math.log(v) - math.log(p.low)) / (math.log(p.high) - math.log(p.low)))
                else:
                    u.append((v - p.low) / (p.high - p.low))
            elif isinstance(p, IntegerParameter):
                iv = int(point[name])
                if p.log:
                    lo, hi = math.log(p.low - 0.5 + 1e-9), math.log(p.high + 0.5)
                    u.append((math.log(iv) - lo) / (hi - lo))
                else:
                    u.append((iv - p.low + 0.5) / (p.high - p.low + 1))
            else:
                u.append((p.choices.index(point[name]) + 0.5) / len(p.choices))
        out: NDArray[np.float64] = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        return out

    # -------------------------------------------------------------- checking
    def problems(self, point: Mapping[str, Any]) -> list[str]:
        """Every reason why ``point`` is not a member of the space (empty if it is)."""
        msgs: list[str] = []
        expected = set(self.names)
        missing = [n for n in self.names if n not in point]
        extra = sorted(set(point) - expected)
        if missing:
            msgs.append(f"missing parameter(s): {', '.join(missing)}")
        if extra:
            msgs.append(f"unknown parameter(s): {', '.join(extra)}; the space has {', '.join(self.names)}")
        for name, p in self.root.items():
            if isinstance(p, CompositionParameter):
                vals = [point.get(c) for c in p.components]
                if any(v is None for v in vals):
                    continue
                bad = [c for c, v in zip(p.components, vals, strict=True) if not _is_real(v)]
                if bad:
                    msgs.append(f"{name}: component(s) {', '.join(bad)} must be numbers")
                    continue
                fv = [float(v) for v in vals]  # type: ignore[arg-type]
                neg = [f"{c} = {v:g}" for c, v in zip(p.components, fv, strict=True) if v < 0]
                if neg:
                    msgs.append(f"{name}: components must be non-negative, got {', '.join(neg)}")
                s = sum(fv)
                if not math.isclose(s, p.total, rel_tol=COMPOSITION_RTOL, abs_tol=1e-9):
                    msgs.append(f"{name}: components sum to {s:g}, must sum to {p.total:g}")
                continue
            if name not in point:
                continue
            v = point[name]
            if isinstance(p, RealParameter):
                if not _is_real(v) or not math.isfinite(float(v)):
                    msgs.append(f"{name}: {v!r} is not a finite number")
                elif not p.low <= float(v) <= p.high:
                    msgs.append(f"{name}: {float(v):g} is outside [{_fmt(p.low)}, {_fmt(p.high)}]")
            elif isinstance(p, IntegerParameter):
                if isinstance(v, bool) or not isinstance(v, int | np.integer):
                    msgs.append(f"{name}: {v!r} is not an integer")
                elif not p.low <= int(v) <= p.high:
                    msgs.append(f"{name}: {int(v)} is outside [{p.low}, {p.high}]")
            elif v not in p.choices:
                msgs.append(f"{name}: {v!r} is not one of {p.choices}")
        if not msgs:
            msgs.extend(m for c in self._constraints if (m := c.problem(point)) is not None)
        return msgs

    def contains(self, point: Mapping[str, Any]) -> bool:
        """Whether ``point`` is a member of the space."""
        return not self.problems(point)

    def normalise(self, point: Mapping[str, Any]) -> Point:
        """Return ``point`` with plain Python types and in declaration order."""
        out: Point = {}
        for name, p in self.root.items():
            if isinstance(p, CompositionParameter):
                for c in p.components:
                    out[c] = float(point[c])
            elif isinstance(p, RealParameter):
                out[name] = float(point[name])
            elif isinstance(p, IntegerParameter):
                out[name] = int(point[name])
            else:
                v = point[name]
                out[name] = v.item() if isinstance(v, np.generic) else v
        return out


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def stick_break(u: Sequence[float] | NDArray[np.float64], total: float = 1.0) -> list[float]:
    """Map ``k - 1`` unit coordinates to ``k`` non-negative amounts summing to ``total``.

    Uses the Beta(1, k - i) stick-breaking construction, so a uniform sample of the
    cube gives a uniform (flat Dirichlet) sample of the simplex.
    """
    k = len(u) + 1
    rest = 1.0
    out: list[float] = []
    for i, ui in enumerate(u):
        b = k - 1 - i
        v = 1.0 - (1.0 - float(ui)) ** (1.0 / b)
        w = v * rest
        out.append(w)
        rest -= w
    out.append(max(rest, 0.0))
    s = sum(out)
    return [total * w / s for w in out]


def stick_unbreak(w: Sequence[float], total: float = 1.0) -> list[float]:
    """Inverse of :func:`stick_break`."""
    k = len(w)
    x = [max(float(v), 0.0) / total for v in w]
    rest = 1.0
    u: list[float] = []
    for i in range(k - 1):
        v = 0.0 if rest <= 1e-15 else min(x[i] / rest, 1.0)
        u.append(1.0 - (1.0 - v) ** (k - 1 - i))
        rest -= x[i]
    return u
