"""The search space: named parameters, their constraints, and the bijection to the unit cube."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import ConfigDict, PrivateAttr, RootModel, model_validator

from labos.core.space.constraints import LinearConstraint, _fmt
from labos.core.space.parameters import (
    COMPOSITION_RTOL,
    CategoricalParameter,
    CompositionParameter,
    DiscreteParameter,
    IntegerParameter,
    Parameter,
    ParamValue,
    Point,
    RealParameter,
    _check_name,
)
from labos.core.space.unitcube import _is_real, stick_break, stick_unbreak


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

    REJECTION_SAMPLES: ClassVar[int] = 10_000
    """Random points :meth:`infeasibility` draws to find constraints that leave (almost) no room."""

    def infeasibility(self) -> list[tuple[int | None, str]]:
        """Why the constraints cannot be met, as ``(constraint index or None for the set, message)``.

        Three checks, cheapest first: a constraint that cannot hold anywhere in the
        parameter ranges (its left side's range, by linear programming over the box and
        the composition simplices); a set that cannot hold at once (an LP); a set that
        leaves so little room that none of :attr:`REJECTION_SAMPLES` random points of
        the space meets it (the planners sample candidates by rejection and would fail).
        Empty when the constraints are satisfiable with room to sample.
        """
        if not self._constraints:
            return []
        from scipy.optimize import linprog

        names: list[str] = []
        bounds: list[tuple[float, float]] = []
        a_eq: list[list[float]] = []
        b_eq: list[float] = []
        for name, p in self.root.items():
            if isinstance(p, CompositionParameter):
                start = len(names)
                names += p.components
                bounds += [(0.0, p.total)] * len(p.components)
                a_eq.append([0.0] * start + [1.0] * len(p.components))
                b_eq.append(p.total)
            elif isinstance(p, RealParameter | IntegerParameter | DiscreteParameter):  # discrete: relaxed to its range
                names.append(name)
                bounds.append((float(p.low), float(p.high)))
        a_eq = [row + [0.0] * (len(names) - len(row)) for row in a_eq]
        index = {n: i for i, n in enumerate(names)}

        def row(c: LinearConstraint) -> list[float]:
            r = [0.0] * len(names)
            for n, coef in c.coefficients.items():
                r[index[n]] += coef
            return r

        eq = {"A_eq": a_eq or None, "b_eq": b_eq or None, "bounds": bounds, "method": "highs"}
        out: list[tuple[int | None, str]] = []
        for i, c in enumerate(self._constraints):
            r = row(c)
            sign = 1.0 if c.op == "<=" else -1.0  # the side that must reach the bound
            res = linprog([sign * v for v in r], **eq)
            if res.status == 0:
                extreme = sign * float(res.fun)
                if (c.op == "<=" and extreme > c.bound + 1e-9) or (c.op == ">=" and extreme < c.bound - 1e-9):
                    side = "at least" if c.op == "<=" else "at most"
                    out.append(
                        (i, f"{c} can never hold: within the parameter ranges its left side is {side} {extreme:g}")
                    )
        if out:
            return out
        rows = [row(c) if c.op == "<=" else [-v for v in row(c)] for c in self._constraints]
        rhs = [c.bound if c.op == "<=" else -c.bound for c in self._constraints]
        res = linprog([0.0] * len(names), A_ub=rows, b_ub=rhs, **eq)
        listed = "; ".join(map(str, self._constraints))
        if res.status == 2:
            return [(None, f"the constraints cannot all hold at once: {listed}")]
        rng = np.random.default_rng(0)
        if not any(self.feasible(self.from_unit(u)) for u in rng.random((self.REJECTION_SAMPLES, self.unit_dim))):
            return [
                (
                    None,
                    f"the constraints leave almost no room: none of {self.REJECTION_SAMPLES:,} random points of the "
                    f"space satisfies {listed}; the planners sample by rejection and would fail: widen them",
                )
            ]
        return []

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
            elif isinstance(p, DiscreteParameter):
                n = len(p.values)
                out[name] = p.values[min(int(x * n), n - 1)]
            else:
                n = len(p.choices)
                out[name] = p.choices[min(int(x * n), n - 1)]
        return out

    def to_unit(self, point: Mapping[str, ParamValue]) -> NDArray[np.float64]:
        """Inverse of :meth:`from_unit` (integers, discrete levels and categories map to cell centres).

        A discrete parameter's levels share the cube equally, as categories do, so a uniform
        sample of the cube tries every level as often; models see the levels' spacing through
        :func:`labos.planners.encoding.encode` instead.
        """
        u: list[float] = []
        for name, p in self.root.items():
            if isinstance(p, CompositionParameter):
                u.extend(stick_unbreak([float(point[c]) for c in p.components], p.total))
            elif isinstance(p, RealParameter):
                u.append(p.unit_coordinate(float(point[name])))
            elif isinstance(p, IntegerParameter):
                u.append(p.unit_coordinate(int(point[name])))
            elif isinstance(p, DiscreteParameter):
                i = p.values.index(p.nearest(float(point[name])))  # a value between levels: its nearest
                u.append((i + 0.5) / len(p.values))
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
            elif isinstance(p, DiscreteParameter):
                if not _is_real(v) or not math.isfinite(float(v)):
                    msgs.append(f"{name}: {v!r} is not a finite number")
                elif p.level(float(v)) is None:
                    msgs.append(f"{name}: {float(v):g} is not one of the values {p.values}")
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
            elif isinstance(p, DiscreteParameter):
                i = p.level(float(point[name]))
                out[name] = p.values[i] if i is not None else float(point[name])
            else:
                v = point[name]
                out[name] = v.item() if isinstance(v, np.generic) else v
        return out
