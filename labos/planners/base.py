"""The planner plugin interface.

A planner proposes points of a :class:`~labos.core.space.SearchSpace` with
``ask(n, pending=...)`` and learns from outcomes with ``tell(observations)``. It knows
the core models only: no devices, no store, no Prefect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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

    def state(self) -> dict[str, Any]:
        """JSON-ready state, stored with every ``ask`` and ``tell``, from which :meth:`restore` rebuilds it."""
        ...

    @classmethod
    def restore(cls, space: SearchSpace, objectives: Sequence[Objective], state: Mapping[str, Any]) -> Planner:
        """The planner as it was when :meth:`state` was taken (a resumed campaign continues from it)."""
        ...

    def take_log(self) -> list[dict[str, Any]]:
        """What the planner did since the last call (model exchanges, rescues), for the decision log; then forget it.

        Entries are dicts with a ``kind``; one with an ``index`` belongs to that point of
        the last ``ask`` (or that observation of the last ``tell``).
        """
        ...


class PlannerOptions(BaseModel):
    """Base of every planner's options model: unknown options are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_repeats: bool = Field(
        default=False,
        description="propose a point already measured, failed or pending again (replicates); "
        "off: such a proposal is replaced by a random feasible point not tried yet",
    )


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
        self._journal: list[dict[str, Any]] = []
        self._setup()

    def _setup(self) -> None:
        """Hook for subclasses: build engines and models once options are validated."""

    def ask(self, n: int = 1, pending: Sequence[Mapping[str, ParamValue]] = ()) -> list[Point]:
        """Propose ``n`` points inside the space (see :class:`Planner`)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        entry: dict[str, Any] = {"op": "ask", "n": n, "pending": [dict(p) for p in pending]}
        self._journal.append(entry)
        points = [self.space.normalise(p) for p in self._ask(n, list(pending))]
        if not self.options.allow_repeats:
            points = self._untried(points, pending)
        after = self._ask_state()
        if after is not None:  # a restore sets this instead of asking again (and refitting a model)
            entry["after"] = after
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
        self._journal.append({"op": "tell", "observations": [o.model_dump(mode="json") for o in obs]})
        self.observations.extend(obs)
        self._tell(obs)

    def state(self) -> dict[str, Any]:
        """JSON-ready state from which :meth:`restore` rebuilds this planner exactly.

        The state is the planner's name, seed and options plus the journal of its
        ``ask`` and ``tell`` calls; restoring replays the journal, so a resumed campaign
        proposes exactly what it would have. (Pool-mode ``choose`` calls are not
        journaled.)
        """
        return {
            "format": 1,
            "planner": self.name,
            "seed": self.seed,
            "options": self.options.model_dump(mode="json"),
            "journal": list(self._journal),  # entries are JSON-ready and never changed once made
        }

    def take_log(self) -> list[dict[str, Any]]:
        """Nothing to report by default (see :meth:`Planner.take_log`)."""
        return []

    @classmethod
    def restore(cls, space: SearchSpace, objectives: Sequence[Objective], state: Mapping[str, Any]) -> BasePlanner:
        """Rebuild a planner from :meth:`state` (the same space and objectives are needed)."""
        cls._check_state(state)
        planner = cls(space, objectives, seed=int(state["seed"]), options=state["options"])
        planner._replay(state["journal"])
        return planner

    @classmethod
    def _check_state(cls, state: Mapping[str, Any]) -> None:
        if state.get("format") != 1 or state.get("planner") != cls.name:
            raise ConfigurationError(
                f"cannot restore a {state.get('planner')!r} planner state (format {state.get('format')}) "
                f"into planner {cls.name!r}"
            )

    def _ask_state(self) -> dict[str, Any] | None:
        """What an ``ask`` leaves behind besides its points, JSON-ready; ``None``: a restore asks again.

        A planner whose ``ask`` changes nothing but what this returns (its random
        generator's state, say, and a model's hyperparameters kept as a warm start) returns
        it, and :meth:`_load_ask_state` sets it back: a restore then tells every
        observation and sets the last ask's state, instead of fitting a model once per
        past ``ask`` (hours at thousands of experiments for a GP). The default replays.
        """
        return None

    def _load_ask_state(self, state: Mapping[str, Any]) -> None:
        """Set back what :meth:`_ask_state` returned (only called with what it returned)."""

    def _replay(self, journal: Sequence[Mapping[str, Any]]) -> None:
        """Make the ``ask``/``tell`` calls of a stored journal again, in order.

        An ``ask`` that stored its state (see :meth:`_ask_state`) is not made again:
        its state is set instead, once the tells before the next ``ask`` are in.
        """
        for entry in journal:
            if entry["op"] == "ask" and "after" in entry:
                self._journal.append(dict(entry))
                self._load_ask_state(entry["after"])
            elif entry["op"] == "ask":
                self.ask(int(entry["n"]), pending=entry["pending"])
            elif entry["op"] == "tell":
                self.tell([Observation.model_validate(o) for o in entry["observations"]])
            else:
                raise ConfigurationError(f"unknown journal entry {entry.get('op')!r} in planner state")

    REPEAT_TOLERANCE: ClassVar[float] = 1e-6
    """Two points closer than this in every unit-cube coordinate are the same experiment."""

    def _key(self, point: Mapping[str, ParamValue]) -> tuple[float, ...]:
        unit = np.asarray(self.space.to_unit(point), dtype=float)
        return tuple(np.round(unit / self.REPEAT_TOLERANCE).astype(np.int64).tolist())

    def _untried(self, points: list[Point], pending: Sequence[Mapping[str, ParamValue]]) -> list[Point]:
        """``points`` with every repeat of a told, pending or earlier point replaced by an untried random one.

        A model-based planner can propose a point it was told about (skopt re-proposed a
        point that had just failed, four times out of four, until the campaign gave up).
        The replacement comes from ``self.rng`` (so a restored planner replays it) and
        respects the constraints.

        Raises
        ------
        ConfigurationError
            If no untried feasible point turns up in 1,000 draws (a small discrete space
            that is used up): set ``allow_repeats`` for replicates.
        """
        seen = {self._key(o.params) for o in self.observations} | {self._key(p) for p in pending}
        out: list[Point] = []
        for p in points:
            if self._key(p) in seen:
                for _ in range(1000):
                    p = self.feasible_points(self.random_points, 1)[0]
                    if self._key(p) not in seen:
                        break
                else:
                    raise ConfigurationError(
                        f"planner {self.name!r}: every point it can find has been tried already "
                        f"({len(seen)} measured, failed or pending); set planner.options.allow_repeats: true "
                        "to measure points again"
                    )
            seen.add(self._key(p))
            out.append(p)
        return out

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

    def told_losses(self) -> list[tuple[Point, float]]:
        """Every told point with its loss; a failure as the worst loss measured (none before a success).

        For surrogates that have no notion of a failed experiment: the failure steers them
        away without inventing a scale.
        """
        ok = [o for o in self.observations if o.ok]
        losses = [self.loss(o) for o in ok]
        if not losses:
            return []
        worst = max(losses)
        told = [(dict(o.params), v) for o, v in zip(ok, losses, strict=True)]
        return told + [(dict(o.params), worst) for o in self.observations if not o.ok]

    def choose_among_random(self, n: int, pending: Sequence[Mapping[str, ParamValue]], k: int) -> list[Point]:
        """``ask`` for a pool-based planner: :meth:`choose` among ``k`` random feasible points of the space."""
        candidates = self.feasible_points(self.random_points, k)
        return [candidates[i] for i in self.choose(candidates, n, pending)]

    def random_points(self, k: int) -> list[Point]:
        """``k`` uniform random points of the space (uniform on simplices too), from ``self.rng``."""
        return [self.space.from_unit(u) for u in self.rng.random((k, self.space.unit_dim))]

    def random_choice(self, candidates: Sequence[Mapping[str, ParamValue]], n: int) -> list[int]:
        """``n`` distinct random indices into ``candidates`` (pool mode before a model exists)."""
        if n > len(candidates):
            raise ValueError(f"cannot choose {n} of {len(candidates)} candidates")
        return [int(i) for i in self.rng.choice(len(candidates), size=n, replace=False)]

    def feasible_points(self, draw: Callable[[int], list[Point]], n: int) -> list[Point]:
        """``n`` points from ``draw(k)`` that satisfy the space's linear constraints (rejection).

        Raises
        ------
        ConfigurationError
            If the constraints leave (almost) no room in the space.
        """
        if not self.space.constraints:
            return draw(n)
        out: list[Point] = []
        tried = 0
        while len(out) < n:
            batch = draw(max(4 * (n - len(out)), 64))
            tried += len(batch)
            out.extend(p for p in batch if self.space.feasible(p))
            if tried >= 20_000 * n and len(out) < n:
                raise ConfigurationError(
                    f"the constraints leave almost no room in the space: {len(out)} of {tried} sampled points "
                    f"satisfy {'; '.join(map(str, self.space.constraints))}"
                )
        return out[:n]

    def _tell(self, observations: list[Observation]) -> None:
        """Hook for subclasses; the base keeps the history only."""

    def loss(self, obs: Observation) -> float:
        """The primary objective of ``obs`` as a value to minimise."""
        return self.losses(obs)[0]

    def losses(self, obs: Observation) -> list[float]:
        """Every objective of ``obs`` as a value to minimise, in the campaign's order."""
        return [
            obs.objectives[o.name] if o.direction == "minimize" else -obs.objectives[o.name] for o in self.objectives
        ]
