"""Benchmark datasets: a CSV of measured candidates, declared by a small YAML file beside it.

```yaml
name: crossed_barrel
csv: Crossed_barrel_dataset.csv
inputs: [n, theta, r, t]
objective: {column: toughness, direction: maximize}
citation: Gongora et al., Sci. Adv. 6, eaaz1708 (2020); Liang et al., npj Comput. Mater. 7, 188 (2021)
reference: {planner: "GP ARD Matern-5/2 + LCB (Liang et al. 2021)", af_0.8: 15.1}
```

A headerless CSV (the Olympus files) names its columns in ``columns``; ``skip_rows``
drops data rows after the header (Summit files carry a ``TYPE,DATA,...`` row). ``space``
declares the search space the way a campaign does: its parameter names are the inputs
(a composition's components among them), categories coded as numbers stay categories,
integers stay integers, and a composition reaches the planner as one simplex. Rows whose
components sum to within ``composition_rtol`` of the total are rescaled to it (files
round: P3HT's percentages sum to 99.9-100.1); any other row outside the space is an
error naming its line. Without ``space``, numeric columns become real parameters over
their range and others categorical.

The pool follows Liang et al. (2021): rows with the same inputs are merged, their
objective being the mean of the *unique* values; maximisation objectives are negated
so that everything is minimised; the "top" candidates are the best ``ceil(0.05 N)``.
Candidates tied with the last of them are broken by ``ties``: ``file_order`` (the first
in the file, the authors' stable sort) or ``all`` (every tied candidate is a top one).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from labos.core.errors import Problem, SpecError
from labos.core.loader import read_model
from labos.core.space import (
    CategoricalParameter,
    CompositionParameter,
    IntegerParameter,
    Point,
    SearchSpace,
)


class ObjectiveColumn(BaseModel):
    """Which column is optimised, in which direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    direction: Literal["minimize", "maximize"]


class DatasetSpec(BaseModel):
    """The YAML declaration of a benchmark dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    csv: str = Field(description="CSV file, relative to the YAML file.")
    columns: list[str] | None = Field(
        default=None, min_length=1, description="The CSV has no header row: these are its columns, in order."
    )
    skip_rows: int = Field(default=0, ge=0, description="Data rows to skip after the header (or from the top).")
    inputs: list[str] = Field(min_length=1)
    objective: ObjectiveColumn
    space: dict[str, Any] | None = Field(
        default=None, description="The search space, as in a campaign; its parameters (components) are the inputs."
    )
    composition_rtol: float = Field(default=0.02, ge=0, lt=1)
    citation: str = Field(min_length=1)
    top_fraction: float = Field(default=0.05, gt=0, le=1)
    ties: Literal["file_order", "all"] = Field(
        default="file_order", description="How candidates tied at the top cut-off are counted."
    )
    held_out: bool = Field(default=False, description="Not used to choose the default planner's settings.")
    reference: dict[str, Any] = Field(default_factory=dict, description="Published numbers to compare against.")


@dataclass
class Pool:
    """A dataset as a pool of unique candidates to minimise over."""

    spec: DatasetSpec
    points: list[Point]
    y: NDArray[np.float64]
    """Objective to minimise (negated for maximisation datasets), one per point."""
    space: SearchSpace
    top: set[int] = field(default_factory=set)
    planner_points: list[Point] = field(default_factory=list)
    """The points as the planner sees them: keyed by the space's names, in its types."""
    tied_at_cutoff: int = 0
    """Candidates whose objective equals the top cut-off's (the tie rule decided between them)."""

    @property
    def n(self) -> int:
        """Pool size."""
        return len(self.points)

    @property
    def n_top(self) -> int:
        """Number of top candidates."""
        return len(self.top)


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text.strip()


def load_dataset(path: str | Path) -> Pool:
    """Read a dataset YAML and its CSV into a :class:`Pool`.

    Raises
    ------
    SpecError
        Bad YAML, missing CSV or columns, non-numeric objectives, rows outside a declared
        space: each named, with its line.
    """
    path = Path(path)
    spec, lines_of = read_model(DatasetSpec, path)
    csv_path = path.parent / spec.csv
    src = str(path)
    header, lines = _read_rows(spec, csv_path, src)
    missing = [c for c in [*spec.inputs, spec.objective.column] if c not in header]
    if missing:
        raise SpecError([Problem("inputs", f"column(s) not in {csv_path.name}: {missing}; columns: {header}")], src)
    groups: dict[tuple[Any, ...], list[float]] = {}
    first_line: dict[tuple[Any, ...], int] = {}
    for line, row in lines:
        key = tuple(_number(row[c]) for c in spec.inputs)
        try:
            value = float(row[spec.objective.column])
        except ValueError:
            msg = f"{csv_path.name}:{line}: objective {row[spec.objective.column]!r} is not a number"
            raise SpecError([Problem("objective", msg)], src) from None
        if not math.isfinite(value):
            raise SpecError([Problem("objective", f"{csv_path.name}:{line}: objective is not finite")], src)
        groups.setdefault(key, []).append(value)
        first_line.setdefault(key, line)
    keys = list(groups)
    sign = -1.0 if spec.objective.direction == "maximize" else 1.0
    y = np.array([sign * float(np.mean(np.unique(groups[k]))) for k in keys])
    points = [dict(zip(spec.inputs, k, strict=True)) for k in keys]
    if spec.space is None:
        space = _space(spec, keys)
        planner_points = _identified(spec, points)
    else:
        space = _declared_space(spec, src, {loc[1:]: n for loc, n in lines_of.items() if loc[:1] == ("space",)})
        planner_points = [
            _declared_point(spec, space, p, f"{csv_path.name}:{first_line[k]}", src)
            for p, k in zip(points, keys, strict=True)
        ]
    top, tied = _top(y, spec)
    return Pool(spec=spec, points=points, y=y, space=space, top=top, planner_points=planner_points, tied_at_cutoff=tied)


def _read_rows(spec: DatasetSpec, csv_path: Path, src: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The CSV's column names and its data rows (with their 1-based line numbers), ``skip_rows`` dropped."""
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:  # some files start with a BOM
            raw = list(csv.reader(fh))
    except FileNotFoundError:
        raise SpecError([Problem("csv", f"file not found: {csv_path}")], src) from None
    if spec.columns is not None:
        header, first = list(spec.columns), 1
    elif raw:
        header, first, raw = [h.strip() for h in raw[0]], 2, raw[1:]
    else:
        header, first = [], 2
    rows: list[tuple[int, dict[str, str]]] = []
    for i, fields in enumerate(raw):
        line = first + i
        if i < spec.skip_rows or not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            msg = f"{csv_path.name}:{line}: {len(fields)} field(s), but {len(header)} column(s): {header}"
            raise SpecError([Problem("columns" if spec.columns else "csv", msg)], src)
        rows.append((line, dict(zip(header, fields, strict=True))))
    if not rows:
        raise SpecError([Problem("csv", f"{csv_path} has no data rows")], src)
    return header, rows


def _top(y: NDArray[np.float64], spec: DatasetSpec) -> tuple[set[int], int]:
    """The top candidates' indices (smallest ``y``) under the tie rule, and how many tie at the cut-off."""
    n_top = math.ceil(spec.top_fraction * len(y))
    order = np.argsort(y, kind="stable")  # ties in file order
    cutoff = y[order[n_top - 1]]
    tied = int(np.sum(y == cutoff))
    if spec.ties == "all":
        return set(np.nonzero(y <= cutoff)[0].tolist()), tied
    return set(order[:n_top].tolist()), tied


def _declared_space(spec: DatasetSpec, src: str, lines: dict[Any, int]) -> SearchSpace:
    from pydantic import ValidationError

    from labos.core.loader import problems_from_validation

    try:
        space = SearchSpace.model_validate(spec.space)
    except ValidationError as exc:
        problems = problems_from_validation(exc, spec.space, lines)
        raise SpecError([Problem(f"space.{p.path}", p.message, p.line) for p in problems], src) from None
    if sorted(space.names) != sorted(spec.inputs):
        msg = f"the space's parameters and components {space.names} must be the inputs {spec.inputs}"
        raise SpecError([Problem("space", msg)], src)
    return space


def _same_choice(choice: Any, value: Any) -> bool:
    """Whether a CSV value (text, or a number where it parses as one) is the declared ``choice``.

    A choice declared as text that reads as a number (Olympus writes ``'6'``, ``'0.0025'``)
    matches the number the CSV cell parses to; ``6`` read from the file is ``6.0``.
    """
    if str(choice) == str(value) or (isinstance(choice, int | float) and choice == value):
        return True
    if isinstance(choice, str) and isinstance(value, float):
        parsed = _number(choice)
        return isinstance(parsed, float) and parsed == value
    return False


def _declared_point(spec: DatasetSpec, space: SearchSpace, raw: dict[str, Any], where: str, src: str) -> Point:
    """One pool row as a member of the declared space (compositions rescaled within tolerance)."""
    point: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, CompositionParameter):
            values = [raw[c] for c in p.components]
            if all(isinstance(v, float) for v in values):
                total = sum(values)
                scale = p.total / total if total and abs(total - p.total) <= spec.composition_rtol * p.total else 1.0
                point.update({c: v * scale for c, v in zip(p.components, values, strict=True)})
            else:
                point.update(dict(zip(p.components, values, strict=True)))
        elif isinstance(p, CategoricalParameter):
            v = raw[name]
            match = [c for c in p.choices if _same_choice(c, v)]
            point[name] = match[0] if match else (int(v) if isinstance(v, float) and v.is_integer() else v)
        elif isinstance(p, IntegerParameter) and isinstance(raw[name], float) and raw[name].is_integer():
            point[name] = int(raw[name])
        else:
            point[name] = raw[name]
    problems = space.problems(point)
    if problems:
        raise SpecError([Problem("space", f"{where}: {'; '.join(problems)}")], src)
    return space.normalise(point)


def _identified(spec: DatasetSpec, points: list[dict[str, Any]]) -> list[Point]:
    """Undeclared pools: points keyed by identifier names, numbers as floats and the rest as text."""
    names = [_identifier(n) for n in spec.inputs]
    return [
        {ident: (v if isinstance(v, float) else str(v)) for ident, v in zip(names, p.values(), strict=True)}
        for p in points
    ]


def _space(spec: DatasetSpec, keys: list[tuple[Any, ...]]) -> SearchSpace:
    params: dict[str, Any] = {}
    for j, name in enumerate(spec.inputs):
        values = [k[j] for k in keys]
        if all(isinstance(v, float) for v in values):
            lo, hi = min(values), max(values)
            params[name] = {"type": "real", "low": lo, "high": hi if hi > lo else lo + 1.0}
        else:
            params[name] = {"type": "categorical", "choices": sorted({str(v) for v in values})}
    safe = {_identifier(n): p for n, p in params.items()}
    if len(safe) != len(params):
        raise SpecError([Problem("inputs", "input names collide once made identifiers")])
    return SearchSpace.model_validate(safe)


def _identifier(name: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in name).strip("_")
    return out if out and not out[0].isdigit() else f"x_{out}"


def pool_points(pool: Pool) -> list[Point]:
    """The pool's points as the planner sees them (see :attr:`Pool.planner_points`)."""
    return pool.planner_points
