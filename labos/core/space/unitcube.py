"""Unit-cube maths: stick-breaking between the cube and a composition simplex."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


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
