"""Pareto fronts of observations with several objectives."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labos.core.campaign import Objective
from labos.core.results import Observation


def pareto_front(observations: Sequence[Observation], objectives: Sequence[Objective]) -> list[Observation]:
    """The successful observations no other one dominates, sorted by the first objective.

    ``a`` dominates ``b`` when it is at least as good in every objective and better in one.
    """
    ok = [o for o in observations if o.ok and all(obj.name in o.objectives for obj in objectives)]
    if not ok:
        return []
    sign = np.array([1.0 if obj.direction == "minimize" else -1.0 for obj in objectives])
    loss = np.array([[o.objectives[obj.name] for obj in objectives] for o in ok]) * sign
    keep = []
    for i, row in enumerate(loss):
        dominated = np.any(np.all(loss <= row, axis=1) & np.any(loss < row, axis=1))
        if not dominated:
            keep.append(i)
    return sorted((ok[i] for i in keep), key=lambda o: float(loss[ok.index(o), 0]))
