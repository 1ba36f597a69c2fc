"""The BO libraries a materials group would pick instead of labos, as planners: BayBE and Ax.

Both are optional (``pip install 'labos[peers]'``); without them the planners raise a
clear error and ``labos bench`` skips them with a message.

- ``baybe`` (Merck): a BayBE ``Campaign`` with its default recommender, the
  ``TwoPhaseMetaRecommender`` (random until there are measurements, then its
  ``BotorchRecommender``: a GP with BayBE's own priors and its default acquisition),
  on a discrete search space made of the candidates: BayBE chooses among them natively.
  Reals and integers become numerical discrete parameters over the values present,
  categories stay categorical (one-hot, BayBE's default encoding).
- ``ax`` (Meta): an Ax ``Client`` with Ax's default generation strategy (center point,
  Sobol initialisation, then a BoTorch model), reals and integers as ranges, categories as
  unordered choices, composition components as ranges over ``[0, total]``. Ax proposes
  points of the continuous space, not of a pool; each proposal is snapped to the nearest
  unchosen candidate (unit-cube and one-hot coordinates), and what Ax learns is the
  candidate actually measured (its proposal is marked abandoned).

In a campaign (``ask``) both score ``candidates`` random feasible points of the space,
as the paper baselines do. Failed experiments are told as the worst loss measured.
Seeds: the planner's seed seeds BayBE's settings and Ax's client.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from labos.core.errors import ConfigurationError
from labos.core.results import Observation
from labos.core.space import (
    CategoricalParameter,
    CompositionParameter,
    DiscreteParameter,
    IntegerParameter,
    ParamValue,
    Point,
)
from labos.planners.base import BasePlanner, PlannerOptions
from labos.planners.encoding import encode
from labos.planners.registry import register


class PeerOptions(PlannerOptions):
    """Options of the peer libraries' planners."""

    candidates: int = Field(default=2000, ge=10, le=100_000, description="random candidates scored per ask")


def peer_available(module: str) -> bool:
    """Whether the optional library ``module`` (``baybe``, ``ax``) is installed."""
    return importlib.util.find_spec(module) is not None


@contextmanager
def _quiet(library: str) -> Iterator[None]:
    """The libraries' numerical warnings and progress logging stay off the terminal.

    ``library`` is imported first: Ax gives each of its loggers its own level at import.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)  # Ax logs at INFO while it is imported
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(library)
    finally:
        logging.disable(previous)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("ax", "baybe"):
            logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class _Peer(BasePlanner):
    Options = PeerOptions
    multi_objective: ClassVar[bool] = False
    library: ClassVar[str] = ""

    def _setup(self) -> None:
        if not peer_available(self.library):
            raise ConfigurationError(
                f"planner {self.name!r} needs the optional {self.library!r} library: pip install 'labos[peers]'"
            )

    def choose(
        self,
        candidates: Sequence[Mapping[str, ParamValue]],
        n: int = 1,
        pending: Sequence[Mapping[str, ParamValue]] = (),
    ) -> list[int]:
        """Pool-based mode: ``n`` indices into ``candidates`` (see the module docstring)."""
        with _quiet(self.library):
            return self._choose(candidates, n, pending)

    def _choose(
        self, candidates: Sequence[Mapping[str, ParamValue]], n: int, pending: Sequence[Mapping[str, ParamValue]]
    ) -> list[int]:
        raise NotImplementedError

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        opts: Any = self.options
        return self.choose_among_random(n, pending, opts.candidates)


@register("baybe")
class BayBEPlanner(_Peer):
    """BayBE (Merck): its default two-phase recommender, choosing among the candidates."""

    library = "baybe"

    def _choose(
        self, candidates: Sequence[Mapping[str, ParamValue]], n: int, pending: Sequence[Mapping[str, ParamValue]]
    ) -> list[int]:
        """Pool-based mode: a BayBE campaign over the candidates and the measured points recommends ``n``."""
        import pandas as pd
        from baybe import Campaign, Settings
        from baybe.parameters import CategoricalParameter as BCat
        from baybe.parameters import NumericalDiscreteParameter
        from baybe.searchspace import SearchSpace as BSpace
        from baybe.searchspace import SubspaceDiscrete
        from baybe.targets import NumericalTarget

        measured = self.told_losses()
        names = self.space.names
        rows = [dict(c) for c in candidates] + [p for p, _ in measured] + [dict(p) for p in pending]
        df = pd.DataFrame(rows, columns=names).drop_duplicates()
        params: list[Any] = []
        for name in names:
            values = sorted(set(df[name]), key=lambda v: (str(type(v)), v))
            if self._categorical(name):
                params.append(BCat(name, tuple(str(v) for v in values)))
                df[name] = df[name].astype(str)
            else:
                if len(values) == 1:  # BayBE needs two values: a constant column is any neighbour
                    values = [values[0], values[0] + 1.0]
                params.append(NumericalDiscreteParameter(name, tuple(float(v) for v in values)))
        df = df.reset_index(drop=True)
        # the constructor, not from_dataframe: that one checks every value against every other (quadratic;
        # minutes for 2,000 candidates), and these rows are the parameters' own values by construction
        space = BSpace(discrete=SubspaceDiscrete(parameters=params, exp_rep=df))
        campaign = Campaign(
            space,
            NumericalTarget(name="__loss", minimize=True),
            allow_recommending_already_measured=False,
            allow_recommending_already_recommended=True,  # a fresh campaign each call: nothing to remember
            allow_recommending_pending_experiments=False,
        )
        with Settings(random_seed=int(self.rng.integers(2**31))):
            if measured:
                m = pd.DataFrame([p for p, _ in measured], columns=names)
                for name in names:
                    if self._categorical(name):
                        m[name] = m[name].astype(str)
                m["__loss"] = [v for _, v in measured]
                campaign.add_measurements(m, numerical_measurements_must_be_within_tolerance=False)
            pend = None
            if pending:
                pend = pd.DataFrame([dict(p) for p in pending], columns=names)
                for name in names:
                    if self._categorical(name):
                        pend[name] = pend[name].astype(str)
            rec = campaign.recommend(n, pending_experiments=pend)
        key = {self._row_key(df.iloc[i]): i for i in range(len(candidates))}
        chosen = [key.get(self._row_key(row)) for _, row in rec.iterrows()]
        if any(c is None for c in chosen) or len(set(chosen)) != n:
            raise ConfigurationError(f"BayBE recommended points outside the candidates: {rec.to_dict('records')}")
        return [int(c) for c in chosen if c is not None]

    def _categorical(self, name: str) -> bool:
        return any(isinstance(p, CategoricalParameter) and n == name for n, p in self.space.items())

    def _row_key(self, row: Any) -> tuple[str, ...]:
        return tuple(str(row[n]) if self._categorical(n) else f"{float(row[n]):.12g}" for n in self.space.names)


@register("ax")
class AxPlanner(_Peer):
    """Ax (Meta): its default generation strategy, each proposal snapped to the nearest candidate."""

    library = "ax"

    def _setup(self) -> None:
        super()._setup()
        self._client: Any = None
        self._failed: list[Observation] = []

    def _new_client(self) -> Any:
        from ax import ChoiceParameterConfig, Client, RangeParameterConfig

        params: list[Any] = []
        for name, p in self.space.items():
            if isinstance(p, CategoricalParameter):
                params.append(ChoiceParameterConfig(name, [str(c) for c in p.choices], "str", is_ordered=False))
            elif isinstance(p, CompositionParameter):
                params.extend(RangeParameterConfig(c, (0.0, float(p.total)), "float") for c in p.components)
            elif isinstance(p, IntegerParameter):
                params.append(RangeParameterConfig(name, (float(p.low), float(p.high)), "int"))
            elif isinstance(p, DiscreteParameter):
                params.append(ChoiceParameterConfig(name, [float(v) for v in p.values], "float", is_ordered=True))
            else:
                params.append(RangeParameterConfig(name, (float(p.low), float(p.high)), "float"))
        client = Client(random_seed=int(self.rng.integers(2**31)))
        client.configure_experiment(parameters=params, name="labos")
        client.configure_optimization(objective="-loss")
        return client

    def _tell(self, observations: list[Observation]) -> None:
        """Measured points are attached to Ax as trials with their loss (a failure: the worst loss)."""
        with _quiet(self.library):
            if self._client is None:
                self._client = self._new_client()
            told = [(o.params, self.loss(o)) for o in observations if o.ok]
            self._failed.extend(o for o in observations if not o.ok)
            losses = [self.loss(o) for o in self.observations if o.ok]
            if self._failed and losses:  # told as the worst loss, once there is one
                told += [(o.params, max(losses)) for o in self._failed]
                self._failed = []
            for params, loss in told:
                trial = self._client.attach_trial(parameters=self._ax_params(params))
                self._client.complete_trial(trial_index=trial, raw_data={"loss": float(loss)})

    def _ax_params(self, point: Mapping[str, ParamValue]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, p in self.space.items():
            if isinstance(p, CategoricalParameter):
                out[name] = str(point[name])
            elif isinstance(p, CompositionParameter):
                out.update({c: float(point[c]) for c in p.components})
            elif isinstance(p, IntegerParameter):
                out[name] = int(point[name])
            else:
                out[name] = float(point[name])
        return out

    def _from_ax(self, params: Mapping[str, Any]) -> Point:
        point: Point = {}
        for name, p in self.space.items():
            if isinstance(p, CategoricalParameter):
                point[name] = next(c for c in p.choices if str(c) == str(params[name]))
            elif isinstance(p, CompositionParameter):
                raw = np.array([max(float(params[c]), 0.0) for c in p.components])
                raw = raw / raw.sum() * p.total if raw.sum() > 0 else np.full(len(raw), p.total / len(raw))
                point.update({c: float(v) for c, v in zip(p.components, raw, strict=True)})
            elif isinstance(p, DiscreteParameter):
                point[name] = p.nearest(float(params[name]))
            else:
                point[name] = params[name]
        return point

    def _choose(
        self, candidates: Sequence[Mapping[str, ParamValue]], n: int, pending: Sequence[Mapping[str, ParamValue]]
    ) -> list[int]:
        """Pool-based mode: Ax proposes ``n`` points; each becomes the nearest unchosen candidate."""
        if self._client is None:
            self._client = self._new_client()
        pend_trials = [self._client.attach_trial(parameters=self._ax_params(p)) for p in pending]
        trials = self._client.get_next_trials(max_trials=n)
        enc = encode(self.space, candidates)
        chosen: list[int] = []
        for index, params in trials.items():
            target = encode(self.space, [self._from_ax(params)])[0]
            dist = np.sum((enc - target) ** 2, axis=1)
            dist[chosen] = np.inf
            chosen.append(int(np.argmin(dist)))
            self._client.mark_trial_abandoned(trial_index=index)
        for t in pend_trials:
            self._client.mark_trial_abandoned(trial_index=t)
        if len(chosen) < n:  # Ax may generate fewer trials than asked: the rest at random
            rest = [i for i in range(len(candidates)) if i not in chosen]
            chosen += [rest[int(k)] for k in self.rng.choice(len(rest), size=n - len(chosen), replace=False)]
        return chosen
