"""Benchmark datasets: a CSV of measured candidates, declared by a small YAML file beside it.

```yaml
name: crossed_barrel
csv: Crossed_barrel_dataset.csv
inputs: [n, theta, r, t]
objective: {column: toughness, direction: maximize}
citation: Gongora et al., Sci. Adv. 6, eaaz1708 (2020); Liang et al., npj Comput. Mater. 7, 188 (2021)
reference: {planner: "GP ARD Matern-5/2 + LCB (Liang et al. 2021)", af_0.8: 15.1}
```

The pool follows Liang et al. (2021): rows with the same inputs are merged, their
objective being the mean of the *unique* values; maximisation objectives are negated
so that everything is minimised; the "top" candidates are the best ``ceil(0.05 N)``.
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
from labos.core.space import Point, SearchSpace


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
    inputs: list[str] = Field(min_length=1)
    objective: ObjectiveColumn
    citation: str = Field(min_length=1)
    top_fraction: float = Field(default=0.05, gt=0, le=1)
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
        Bad YAML, missing CSV or columns, non-numeric objectives: each named.
    """
    path = Path(path)
    spec, _ = read_model(DatasetSpec, path)
    csv_path = path.parent / spec.csv
    src = str(path)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:  # some files start with a BOM
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise SpecError([Problem("csv", f"file not found: {csv_path}")], src) from None
    if not rows:
        raise SpecError([Problem("csv", f"{csv_path} has no data rows")], src)
    header = list(rows[0])
    missing = [c for c in [*spec.inputs, spec.objective.column] if c not in header]
    if missing:
        raise SpecError([Problem("inputs", f"column(s) not in {csv_path.name}: {missing}; columns: {header}")], src)
    groups: dict[tuple[Any, ...], list[float]] = {}
    for line, row in enumerate(rows, start=2):
        key = tuple(_number(row[c]) for c in spec.inputs)
        try:
            value = float(row[spec.objective.column])
        except ValueError:
            msg = f"{csv_path.name}:{line}: objective {row[spec.objective.column]!r} is not a number"
            raise SpecError([Problem("objective", msg)], src) from None
        if not math.isfinite(value):
            raise SpecError([Problem("objective", f"{csv_path.name}:{line}: objective is not finite")], src)
        groups.setdefault(key, []).append(value)
    keys = list(groups)
    sign = -1.0 if spec.objective.direction == "maximize" else 1.0
    y = np.array([sign * float(np.mean(np.unique(groups[k]))) for k in keys])
    space = _space(spec, keys)
    points = [dict(zip(spec.inputs, k, strict=True)) for k in keys]
    n_top = math.ceil(spec.top_fraction * len(keys))
    top = set(np.argsort(y, kind="stable")[:n_top].tolist())
    return Pool(spec=spec, points=points, y=y, space=space, top=top)


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
    """The pool's points keyed by the space's identifier names."""
    names = [_identifier(n) for n in pool.spec.inputs]
    out: list[Point] = []
    for p in pool.points:
        out.append({ident: (v if isinstance(v, float) else str(v)) for ident, v in zip(names, p.values(), strict=True)})
    return out
