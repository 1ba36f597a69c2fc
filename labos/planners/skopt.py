"""Bayesian optimisation with scikit-optimize's ``Optimizer``.

The space is encoded for skopt as follows: reals and integers keep their bounds and
log scale, categoricals stay categorical, and a composition of ``k`` components becomes
``k - 1`` unit coordinates of the stick-breaking map (so every proposal lies exactly on
the simplex). Pending experiments are handled with a constant liar on a copy.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from labos.core.results import Observation
from labos.core.space import (
    CategoricalParameter,
    CompositionParameter,
    DiscreteParameter,
    IntegerParameter,
    ParamValue,
    Point,
    RealParameter,
    SearchSpace,
    stick_break,
    stick_unbreak,
)
from labos.planners.base import BasePlanner, PlannerOptions
from labos.planners.registry import register

if TYPE_CHECKING:  # skopt itself is imported when a planner is built: validating a campaign needs none of it
    from skopt import Optimizer
    from skopt.space import Dimension


class SkoptOptions(PlannerOptions):
    """Options of the ``skopt`` planner (names follow ``skopt.Optimizer``)."""

    base_estimator: Literal["GP", "RF", "ET", "GBRT"] = "GP"
    acq_func: Literal["EI", "PI", "LCB", "gp_hedge"] = "EI"
    n_initial_points: int = Field(default=5, ge=1, le=1000)
    initial_point_generator: Literal["random", "sobol", "halton", "hammersly", "lhs"] = "sobol"
    xi: float = Field(default=0.01, ge=0)
    kappa: float = Field(default=1.96, ge=0)
    acq_optimizer: Literal["auto", "sampling", "lbfgs"] = "auto"


def skopt_dimensions(space: SearchSpace) -> list[Dimension]:
    """Skopt dimensions for ``space`` (compositions as stick-breaking coordinates).

    skopt has no dimension of numeric levels: a discrete parameter is a real over its range
    (log-uniform with ``log``), and :func:`decode` takes the nearest level.
    """
    from skopt.space import Categorical, Integer, Real

    dims: list[Dimension] = []
    for name, p in space.items():
        if isinstance(p, RealParameter | DiscreteParameter):
            dims.append(Real(p.low, p.high, prior="log-uniform" if p.log else "uniform", name=name))
        elif isinstance(p, IntegerParameter):
            dims.append(Integer(p.low, p.high, prior="log-uniform" if p.log else "uniform", name=name))
        elif isinstance(p, CategoricalParameter):
            dims.append(Categorical(list(p.choices), name=name))
        else:
            dims.extend(Real(0.0, 1.0, name=f"{name}__u{i}") for i in range(len(p.components) - 1))
    return dims


def encode(space: SearchSpace, point: Mapping[str, ParamValue]) -> list[Any]:
    """A point of the space as an skopt vector."""
    x: list[Any] = []
    for name, p in space.items():
        if isinstance(p, CompositionParameter):
            x.extend(stick_unbreak([float(point[c]) for c in p.components], p.total))
        else:
            x.append(point[name])
    return x


def decode(space: SearchSpace, x: Sequence[Any]) -> Point:
    """An skopt vector as a point of the space."""
    out: Point = {}
    i = 0
    for name, p in space.items():
        if isinstance(p, CompositionParameter):
            k = len(p.components)
            out.update(zip(p.components, stick_break(x[i : i + k - 1], p.total), strict=True))
            i += k - 1
        elif isinstance(p, DiscreteParameter):
            out[name] = p.nearest(float(x[i]))
            i += 1
        else:
            v = x[i]
            out[name] = v.item() if isinstance(v, np.generic) else v
            i += 1
    return out


@register("skopt")
class SkoptPlanner(BasePlanner):
    """Sequential model-based optimisation: a GP (or tree) surrogate and EI/PI/LCB."""

    Options = SkoptOptions
    multi_objective = False

    def _setup(self) -> None:
        o = self.options
        assert isinstance(o, SkoptOptions)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*balance properties.*", category=UserWarning)
            self._opt = self._make_optimizer(self.space, o, self.seed)
        self._failed: list[Observation] = []  # failures told before any success: told once one arrives

    @staticmethod
    def _make_optimizer(space: SearchSpace, o: SkoptOptions, seed: int) -> Optimizer:
        from skopt import Optimizer

        constraint = None
        if space.constraints:  # skopt samples candidates by rejection and optimises by sampling

            def constraint(x: list[Any]) -> bool:
                return space.feasible(decode(space, x))

        return Optimizer(
            skopt_dimensions(space),
            base_estimator=o.base_estimator,
            n_initial_points=o.n_initial_points,
            # skopt's quasi-random designs ignore constraints; its random sampler honours them
            initial_point_generator="random" if space.constraints else o.initial_point_generator,
            acq_func=o.acq_func,
            acq_optimizer=o.acq_optimizer,
            acq_func_kwargs={"xi": o.xi, "kappa": o.kappa},
            random_state=seed,
            space_constraint=constraint,
        )

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        opt = self._opt
        if pending and opt.yi:
            # constant liar: pretend pending points returned the best value seen so far
            lie = float(np.min(opt.yi))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                opt = opt.copy(random_state=int(self.rng.integers(2**31)))
                opt.tell([encode(self.space, p) for p in pending], [lie] * len(pending))
        with warnings.catch_warnings():
            # skopt warns when it re-proposes a point already evaluated; not an error here
            warnings.simplefilter("ignore", UserWarning)
            xs = opt.ask(n_points=n) if n > 1 else [opt.ask()]
        return [decode(self.space, x) for x in xs]

    def choose(
        self,
        candidates: Sequence[Mapping[str, ParamValue]],
        n: int = 1,
        pending: Sequence[Mapping[str, ParamValue]] = (),
    ) -> list[int]:
        """Pool-based mode: score candidates with the fitted surrogate's acquisition.

        Before the surrogate exists (initial points), candidates are drawn at random.
        ``gp_hedge`` scores with EI here. Batches use a constant liar.
        """
        from skopt.acquisition import _gaussian_acquisition

        o = self.options
        assert isinstance(o, SkoptOptions)
        chosen: list[int] = []
        pend = list(pending)
        xt = None  # candidates in skopt's transformed space, computed once for the whole batch
        for _ in range(n):
            opt = self._opt
            if pend and opt.yi:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    opt = opt.copy(random_state=int(self.rng.integers(2**31)))
                    opt.tell([encode(self.space, p) for p in pend], [float(np.min(opt.yi))] * len(pend))
            if not opt.models:
                free = [i for i in range(len(candidates)) if i not in chosen]
                i = int(self.rng.choice(free))
            else:
                if xt is None:
                    xt = opt.space.transform([encode(self.space, c) for c in candidates])
                acq = "EI" if o.acq_func == "gp_hedge" else o.acq_func
                values = _gaussian_acquisition(
                    xt, opt.models[-1], y_opt=float(np.min(opt.yi)), acq_func=acq, acq_func_kwargs=opt.acq_func_kwargs
                )
                values[chosen] = np.inf  # skopt minimises its acquisition
                i = int(np.argmin(values))
            chosen.append(i)
            pend.append(candidates[i])
        return chosen

    def _tell(self, observations: list[Observation]) -> None:
        """Tell skopt every outcome; a failed point as the worst loss seen so far.

        skopt has no notion of a failed evaluation, and dropping failures left its
        model free to propose the same point again. A failure is told as the worst
        loss measured (told as soon as there is one), which steers the acquisition away
        from where experiments fail without inventing a scale.
        """
        self._failed.extend(o for o in observations if not o.ok)
        ok = [o for o in observations if o.ok]
        xs = [encode(self.space, o.params) for o in ok]
        ys = [self.loss(o) for o in ok]
        if self._failed and (ys or self._opt.yi):
            worst = max([*ys, *map(float, self._opt.yi)])
            xs += [encode(self.space, o.params) for o in self._failed]
            ys += [worst] * len(self._failed)
            self._failed = []
        if not xs:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self._opt.tell(xs, ys)
