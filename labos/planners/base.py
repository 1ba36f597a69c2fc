"""The planner plugin interface.

A planner proposes points of a :class:`~labos.core.space.SearchSpace` with
``ask(n, pending=...)`` and learns from outcomes with ``tell(observations)``. It knows
the core models only: no devices, no store, no Prefect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from labos.core.campaign import Objective
from labos.core.errors import ConfigurationError, OutOfBoundsError
from labos.core.results import Observation
from labos.core.space import ParamValue, Point, SearchSpace


@runtime_checkable
class Planner(Protocol):
    """What the campaign loop needs of a planner."""

    name: str

    def ask(self, n: int = 1, pending: Sequence[Mapping[str, ParamValue]] = ()) -> list[Point]:
        """Propose ``n`` points, taking into account ``pending`` experiments still running."""
        ...

    def tell(self, observations: Sequence[Observation]) -> None:
        """Learn from finished experiments (successful or failed)."""
        ...


class PlannerOptions(BaseModel):
    """Base of every planner's options model: unknown options are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BasePlanner:
    """Convenience base: stores the space, objectives, options and history.

    Subclasses set ``name``, ``Options`` (a :class:`PlannerOptions` subclass) and
    implement :meth:`_ask`; :meth:`ask` validates every proposal against the space.
    """

    name: ClassVar[str] = "base"
    Options: ClassVar[type[PlannerOptions]] = PlannerOptions
    multi_objective: ClassVar[bool] = True

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        *,
        seed: int = 0,
        options: Mapping[str, Any] | PlannerOptions | None = None,
    ) -> None:
        if not objectives:
            raise ConfigurationError(f"planner {self.name!r} needs at least one objective")
        if not self.multi_objective and len(objectives) > 1:
            names = ", ".join(o.name for o in objectives)
            raise ConfigurationError(
                f"planner {self.name!r} optimises a single objective, but the campaign has {len(objectives)} "
                f"({names}); choose a multi-objective planner or keep one objective"
            )
        self.space = space
        self.objectives = list(objectives)
        self.seed = seed
        self.options = options if isinstance(options, PlannerOptions) else self.Options(**(options or {}))
        self.rng = np.random.default_rng(seed)
        self.observations: list[Observation] = []

    def ask(self, n: int = 1, pending: Sequence[Mapping[str, ParamValue]] = ()) -> list[Point]:
        """Propose ``n`` points inside the space (see :class:`Planner`)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        points = [self.space.normalise(p) for p in self._ask(n, list(pending))]
        for p in points:
            problems = self.space.problems(p)
            if problems:
                raise OutOfBoundsError(
                    f"planner {self.name!r} proposed a point outside the space: {'; '.join(problems)}"
                )
        return points

    def tell(self, observations: Sequence[Observation]) -> None:
        """Record observations and pass them to :meth:`_tell`."""
        obs = list(observations)
        self.observations.extend(obs)
        self._tell(obs)

    def choose(
        self,
        candidates: Sequence[Mapping[str, ParamValue]],
        n: int = 1,
        pending: Sequence[Mapping[str, ParamValue]] = (),
    ) -> list[int]:
        """Pool-based mode: pick ``n`` of a finite set of candidates (indices into it).

        Planners that can score arbitrary points override this; the default refuses.
        """
        raise NotImplementedError(f"planner {self.name!r} has no pool-based mode")

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        raise NotImplementedError

    def _tell(self, observations: list[Observation]) -> None:
        """Hook for subclasses; the base keeps the history only."""

    def loss(self, obs: Observation) -> float:
        """The primary objective of ``obs`` as a value to minimise."""
        o = self.objectives[0]
        v = obs.objectives[o.name]
        return v if o.direction == "minimize" else -v
