"""Numeric encodings of points for surrogate models.

Reals and integers use the space's unit-cube coordinates (log scales included); a discrete
parameter is where its value lies between its smallest and largest level (its unit-cube
cell would hide the spacing: 6, 12, 24, 48 would sit evenly); a composition is its
fractions, every component over the total (the stick-breaking coordinates the unit cube
uses to sample the simplex are ratios of what earlier components left, order-dependent
and undefined once nothing is left: Ni 0.9 + Fe 0.1 and Ni 0.9 + Co 0.1, 0.14 apart, are
1.4 apart in them); each categorical becomes a one-hot block, so no false order is imposed
on its choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from labos.core.space import (
    CategoricalParameter,
    CompositionParameter,
    DiscreteParameter,
    IntegerParameter,
    ParamValue,
    SearchSpace,
)


def encoded_dim(space: SearchSpace) -> int:
    """Width of :func:`encode`'s output."""
    d = 0
    for _, p in space.items():
        if isinstance(p, CategoricalParameter):
            d += len(p.choices)
        elif isinstance(p, CompositionParameter):
            d += len(p.components)
        else:
            d += 1
    return d


def encode(space: SearchSpace, points: Sequence[Mapping[str, ParamValue]]) -> NDArray[np.float64]:
    """Encode points as rows of a ``len(points) x encoded_dim(space)`` array in ``[0, 1]``."""
    out = np.zeros((len(points), encoded_dim(space)))
    for r, point in enumerate(points):
        col = 0
        for name, p in space.items():
            if isinstance(p, CategoricalParameter):
                out[r, col + p.choices.index(point[name])] = 1.0
                col += len(p.choices)
            elif isinstance(p, CompositionParameter):
                k = len(p.components)
                out[r, col : col + k] = np.clip([float(point[c]) / p.total for c in p.components], 0.0, 1.0)
                col += k
            elif isinstance(p, DiscreteParameter):
                out[r, col] = p.position(float(point[name]))
                col += 1
            elif isinstance(p, IntegerParameter):
                out[r, col] = min(max(p.unit_coordinate(int(point[name])), 0.0), 1.0)
                col += 1
            else:
                out[r, col] = min(max(p.unit_coordinate(float(point[name])), 0.0), 1.0)
                col += 1
    return out


def categorical_blocks(space: SearchSpace) -> list[list[int]]:
    """The columns of :func:`encode`'s output that hold each categorical's one-hot block, in order."""
    blocks: list[list[int]] = []
    col = 0
    for _, p in space.items():
        width = (
            len(p.choices)
            if isinstance(p, CategoricalParameter)
            else (len(p.components) if isinstance(p, CompositionParameter) else 1)
        )
        if isinstance(p, CategoricalParameter):
            blocks.append(list(range(col, col + width)))
        col += width
    return blocks
