"""Bayesian optimisation on torch: a BoTorch GP with an ARD Matérn-5/2 kernel.

Model: ``SingleTaskGP`` on the encoded space (:mod:`labos.planners.encoding`), with a
scaled ARD Matérn-5/2 kernel — with categorical variables, a sum of main-effect terms and
a product of that Matérn kernel with a Hamming kernel
(:mod:`labos.planners.botorch.kernels`) —, inputs normalised (optionally warped) and outcomes
power-transformed (Box-Cox / Yeo-Johnson fitted to the values seen) and standardised,
one output per objective. Acquisition: UCB (``beta = 1``: mean plus one standard deviation; qUCB for
batches and pending points), or LogEI / qLogNEI (pending points are passed as
``X_pending``);
with several objectives, qLogNEHVI (the log form of qNEHVI, noisy expected hypervolume
improvement) with a reference point just below the worst values observed.

The acquisition is maximised over a candidate set drawn from the space itself — a
scrambled Sobol design plus perturbations of the best points so far — so every space
labos supports (log scales, integers, categories, composition simplices) is handled
exactly, with every proposal inside it. Given a finite pool (:meth:`choose`), the
acquisition is evaluated on the pool instead.

A run whose best has not improved for ``stall_cycles`` experiments while its fit has
collapsed is refitted from the default start or, failing that, given a space-filling
pick; with a sound fit and categorical variables it can probe the least-tried levels of
the most relevant one (``probe_levels``, off by default). :meth:`take_log` hands each
rescue to the campaign's decision log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from labos.core.campaign import Objective
from labos.core.space import ParamValue, Point, SearchSpace
from labos.planners.botorch.acquisition import Acquisition
from labos.planners.botorch.model import DTYPE
from labos.planners.botorch.options import BotorchOptions
from labos.planners.encoding import encode
from labos.planners.registry import register
from labos.planners.sobol import sobol_points


@register("botorch")
class BotorchPlanner(Acquisition):
    """GP (ARD Matérn-5/2) with LogEI / qLogNEI / UCB, via BoTorch on torch."""

    Options = BotorchOptions
    multi_objective = True

    def _setup(self) -> None:
        from scipy.stats import qmc

        self.opts: BotorchOptions = self.options  # type: ignore[assignment]
        self._sobol = qmc.Sobol(d=self.space.unit_dim, scramble=True, seed=self.seed)
        self._hypers: dict[str, torch.Tensor] | None = None
        self._last_rescue = 0
        self._log: list[dict[str, Any]] = []
        self.stats: dict[str, int] = {"rescue_refits": 0, "rescue_space_filling": 0, "rescue_probes": 0}

    @classmethod
    def restore(cls, space: SearchSpace, objectives: Sequence[Objective], state: Mapping[str, Any]) -> BotorchPlanner:
        """Rebuild the planner from :meth:`state`; rescues made again while replaying are not logged twice."""
        planner = super().restore(space, objectives, state)
        assert isinstance(planner, BotorchPlanner)
        planner._log.clear()
        return planner

    # ------------------------------------------------------------ candidates
    def _candidates(self) -> list[Point]:
        o = self.opts
        cands = self.random_points(o.n_candidates)
        ok = [obs for obs in self.observations if obs.ok]
        if ok and o.n_local:
            centres = [self.space.to_unit(b.params) for b in sorted(ok, key=self.loss)[:5]]
            for i in range(o.n_local):
                centre = centres[i % len(centres)]
                scale = 0.02 if i % 2 else 0.1
                cands.append(self.space.from_unit(centre + self.rng.normal(0.0, scale, centre.size)))
        if self.space.constraints:
            cands = [c for c in cands if self.space.feasible(c)]
            if len(cands) < 64:  # a thin feasible region: sample it directly
                cands += self.feasible_points(self.random_points, 256)
        return cands

    # -------------------------------------------------------------- planner
    def _ready(self) -> bool:
        return sum(o.ok for o in self.observations) >= max(self.opts.n_initial_points, 2)

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        if not self._ready():
            return self.feasible_points(lambda k: sobol_points(self.space, self._sobol, k), n)
        cands = self._candidates()
        return [cands[i] for i in self._scores_and_picks(cands, n, pending)]

    def mean_scores(self, candidates: Sequence[Mapping[str, ParamValue]]) -> np.ndarray:
        """The model's posterior mean at each candidate, higher meaning better (first objective).

        On the model's scale (losses negated, power-transformed and standardised), so for
        ranking candidates by what the model believes, not for reading values in the
        objective's units. Fits the model to every successful observation told so far.
        """
        if sum(o.ok for o in self.observations) < 2:
            raise ValueError("mean_scores needs at least two successful observations")
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            X, Y = self._training_data()
            model, _ = self._model(X, Y, self._hypers)
            C = torch.as_tensor(encode(self.space, candidates), dtype=DTYPE)
            scores: np.ndarray = self._marginals(model, C)[0][:, 0].numpy()
        return scores

    def choose(
        self,
        candidates: Sequence[Mapping[str, ParamValue]],
        n: int = 1,
        pending: Sequence[Mapping[str, ParamValue]] = (),
    ) -> list[int]:
        """Pick ``n`` of a finite pool of candidates (indices into ``candidates``)."""
        if n > len(candidates) or not self._ready():
            return self.random_choice(candidates, n)
        return self._scores_and_picks(candidates, n, pending)
