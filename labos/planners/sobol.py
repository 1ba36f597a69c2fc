"""Space-filling design: a scrambled Sobol sequence mapped onto the space."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from scipy.stats import qmc

from labos.core.space import ParamValue, Point, SearchSpace
from labos.planners.base import BasePlanner, PlannerOptions
from labos.planners.registry import register


class SobolOptions(PlannerOptions):
    """Options of the ``sobol`` planner."""

    scramble: bool = True


@register("sobol")
class SobolPlanner(BasePlanner):
    """Consecutive points of a (scrambled) Sobol sequence; fills the space evenly."""

    Options = SobolOptions

    def _setup(self) -> None:
        assert isinstance(self.options, SobolOptions)
        self._engine = qmc.Sobol(d=self.space.unit_dim, scramble=self.options.scramble, seed=self.seed)
        if not self.options.scramble:
            self._engine.fast_forward(1)  # the unscrambled first point is the all-zero corner

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        return self.feasible_points(lambda k: sobol_points(self.space, self._engine, k), n)


def sobol_points(space: SearchSpace, engine: qmc.Sobol, n: int) -> list[Point]:
    """The next ``n`` points of ``engine`` mapped onto ``space``."""
    with warnings.catch_warnings():
        # scipy warns when n is not a power of two; a campaign's budget rarely is
        warnings.filterwarnings("ignore", message=".*balance properties.*", category=UserWarning)
        u = engine.random(n)
    return [space.from_unit(row) for row in u]
