"""The baselines of Liang et al. (2021), re-implemented: GP-ARD Matérn-5/2 + LCB and RF + LCB.

As in the authors' notebooks (github.com/PV-Lab/Benchmarking, MIT licence): inputs are
standardised, the objective is minimised and standardised, and the next experiment is
the candidate maximising ``LCB = -ratio * mean + std`` with ``ratio`` 1 ("LCB1"), the last
of equal maxima (their ``<=`` scan).

- ``gp-lcb``: a GP with an ARD Matérn-5/2 kernel plus a bias (constant) kernel and a
  Gaussian noise starting at 0.01, hyperparameters fitted by maximum likelihood with 10
  restarts (they used GPy; this uses scikit-learn's ``GaussianProcessRegressor``, the same
  model and criterion).
- ``rf-lcb``: a random forest of 50 trees (scikit-learn defaults otherwise); mean and
  standard deviation over the trees' predictions.

Inputs are the raw values (a composition's components as they are, not a simplex map)
standardised over the observed points and the candidates; a categorical becomes one-hot
columns, which the notebooks (numeric data only) did not need. Failed experiments are
told as the worst loss measured. In campaign mode (``ask``) the candidates are
``candidates`` random feasible points of the space.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from labos.core.space import CategoricalParameter, CompositionParameter, ParamValue, Point
from labos.planners.base import BasePlanner, PlannerOptions
from labos.planners.registry import register


class LCBOptions(PlannerOptions):
    """Options of the paper's baselines."""

    ratio: float = Field(default=1.0, gt=0, description="weight of the mean in LCB = -ratio * mean + std")
    candidates: int = Field(default=2000, ge=10, le=100_000, description="random candidates scored per ask")


class _PoolLCB(BasePlanner):
    """Pool-based LCB on a surrogate that predicts a mean and a standard deviation."""

    Options = LCBOptions
    multi_objective: ClassVar[bool] = False

    def _features(self, points: Sequence[Mapping[str, ParamValue]]) -> NDArray[np.float64]:
        cols: list[NDArray[np.float64]] = []
        for name, p in self.space.items():
            if isinstance(p, CategoricalParameter):
                cols.extend(np.array([float(pt[name] == c) for pt in points]) for c in p.choices)
            elif isinstance(p, CompositionParameter):
                cols.extend(np.array([float(pt[c]) for pt in points]) for c in p.components)
            else:
                cols.append(np.array([float(pt[name]) for pt in points]))
        return np.column_stack(cols) if cols else np.zeros((len(points), 0))

    def _predict(
        self, x: NDArray[np.float64], y: NDArray[np.float64], xc: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        raise NotImplementedError

    def choose(
        self,
        candidates: Sequence[Mapping[str, ParamValue]],
        n: int = 1,
        pending: Sequence[Mapping[str, ParamValue]] = (),
    ) -> list[int]:
        """Pool-based mode: the candidates maximising LCB (random before two successes).

        Batches use a constant liar: each pick and each pending point is told as the best
        loss so far before the next pick.
        """
        told = self.told_losses()
        points, y = [p for p, _ in told], np.array([v for _, v in told])
        if len({tuple(sorted(p.items())) for p in points}) < 2 or np.ptp(y) == 0:
            return self.random_choice(candidates, n)
        liars = [dict(p) for p in pending]
        chosen: list[int] = []
        opts: Any = self.options
        for _ in range(n):
            train = points + liars
            ys = np.concatenate([y, np.full(len(liars), y.min())])
            feats = self._features([*train, *candidates])
            mu, sd = feats.mean(axis=0), feats.std(axis=0)
            sd[sd == 0] = 1.0
            feats = (feats - mu) / sd
            ys = (ys - ys.mean()) / (ys.std() or 1.0)
            mean, std = self._predict(feats[: len(train)], ys, feats[len(train) :])
            acq = -opts.ratio * mean + std
            acq[chosen] = -np.inf
            best = int(len(acq) - 1 - np.argmax(acq[::-1]))  # the last of equal maxima, as in the notebooks
            chosen.append(best)
            liars.append(dict(candidates[best]))
        return chosen

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        opts: Any = self.options
        return self.choose_among_random(n, pending, opts.candidates)


@register("gp-lcb")
class GPLCBPlanner(_PoolLCB):
    """Liang et al. (2021) baseline: GP, ARD Matérn-5/2 plus bias, with LCB (ratio 1) over candidates."""

    def _predict(
        self, x: NDArray[np.float64], y: NDArray[np.float64], xc: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        d = x.shape[1]
        kernel = (
            ConstantKernel(1.0) * Matern(length_scale=np.ones(d), length_scale_bounds=(1e-3, 1e3), nu=2.5)
            + ConstantKernel(1.0)  # GPy's Bias kernel
            + WhiteKernel(0.01, noise_level_bounds=(1e-6, 1e1))
        )
        gp = GaussianProcessRegressor(
            kernel=kernel, n_restarts_optimizer=10, random_state=int(self.rng.integers(2**31))
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(x, y)
        mean, std = gp.predict(xc, return_std=True)
        return np.asarray(mean), np.asarray(std)


@register("rf-lcb")
class RFLCBPlanner(_PoolLCB):
    """Liang et al. (2021) baseline: random forest of 50 trees with LCB (ratio 1) over candidates."""

    def _predict(
        self, x: NDArray[np.float64], y: NDArray[np.float64], xc: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        from sklearn.ensemble import RandomForestRegressor

        rf = RandomForestRegressor(n_estimators=50, random_state=int(self.rng.integers(2**31)))
        rf.fit(x, y)
        trees = np.array([t.predict(xc) for t in rf.estimators_])
        return trees.mean(axis=0), trees.std(axis=0)
