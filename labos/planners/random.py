"""Uniform random search: the baseline every other planner must beat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labos.core.space import ParamValue, Point
from labos.planners.base import BasePlanner
from labos.planners.registry import register


@register("random")
class RandomPlanner(BasePlanner):
    """Independent uniform samples of the space (uniform on every simplex too)."""

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        return self.feasible_points(self.random_points, n)

    def _ask_state(self) -> dict[str, Any]:
        """An ask changes nothing but the generator."""
        return {"rng": self.rng.bit_generator.state}

    def _load_ask_state(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def choose(
        self,
        candidates: Sequence[Mapping[str, ParamValue]],
        n: int = 1,
        pending: Sequence[Mapping[str, ParamValue]] = (),
    ) -> list[int]:
        """``n`` distinct candidates uniformly at random."""
        return self.random_choice(candidates, n)
