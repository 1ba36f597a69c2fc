"""Acquisition of the ``botorch`` planner: UCB / LogEI / qLogNEI / qLogNEHVI, greedy batches, feasibility."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from labos.core.space import ParamValue
from labos.planners.botorch.model import DTYPE, GPModel
from labos.planners.encoding import encode


class Acquisition(GPModel):
    """The acquisition half of :class:`~labos.planners.botorch.planner.BotorchPlanner`."""

    def _acquisition(self, model: Any, X: torch.Tensor, Y: torch.Tensor, pending: torch.Tensor | None) -> Any:
        from botorch.acquisition.analytic import LogExpectedImprovement, UpperConfidenceBound
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement

        kind = self.opts.acquisition
        if Y.shape[-1] > 1:
            from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement

            span = (Y.max(0).values - Y.min(0).values).clamp_min(1e-9)
            ref_point = (Y.min(0).values - 0.1 * span).tolist()  # just below the worst seen: every trade-off counts
            return qLogNoisyExpectedHypervolumeImprovement(
                model, ref_point=ref_point, X_baseline=X, X_pending=pending, prune_baseline=True
            )
        if kind == "ucb":
            if pending is not None:
                from botorch.acquisition.monte_carlo import qUpperConfidenceBound

                return qUpperConfidenceBound(model, beta=self.opts.beta, X_pending=pending)
            return UpperConfidenceBound(model, beta=self.opts.beta)
        if kind == "logei" and pending is None:
            return LogExpectedImprovement(model, best_f=Y[:, 0].max())
        return qLogNoisyExpectedImprovement(model, X_baseline=X, X_pending=pending, prune_baseline=True)

    def _scores_and_picks(
        self, candidates: Sequence[Mapping[str, ParamValue]], n: int, pending: Sequence[Mapping[str, ParamValue]]
    ) -> list[int]:
        """Greedy batch: pick the best candidate, add it to the pending set, repeat.

        Torch's global random state is forked and seeded from the planner's own, so that
        model fitting (random restarts) and Monte-Carlo acquisitions are reproducible.
        """
        with torch.random.fork_rng():
            torch.manual_seed(int(self.rng.integers(2**63)))
            return self._picks(candidates, n, pending)

    def _picks(
        self, candidates: Sequence[Mapping[str, ParamValue]], n: int, pending: Sequence[Mapping[str, ParamValue]]
    ) -> list[int]:
        X, Y = self._training_data()
        model, self._hypers = self._model(X, Y, self._hypers)
        C = torch.as_tensor(encode(self.space, candidates), dtype=DTYPE).unsqueeze(-2)  # b x 1 x d
        log_feasible = self._log_feasibility(C.squeeze(-2))
        chosen: list[int] = []
        pend = list(pending)
        for _ in range(n):
            P = torch.as_tensor(encode(self.space, pend), dtype=DTYPE) if pend else None
            acq = self._acquisition(model, X, Y, P)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # jitter notices from near-duplicate points
                values = torch.cat([acq(chunk) for chunk in C.split(4096)]).numpy()
            if log_feasible is not None:
                if (
                    self.opts.acquisition == "ucb" and Y.shape[-1] == 1
                ):  # not a log-probability scale: keep likely-feasible points
                    values = np.where(log_feasible >= np.log(0.5), values, -np.inf)
                else:  # LogEI x P(feasible), in log space
                    values = values + log_feasible
            values[chosen] = -np.inf
            if not np.isfinite(values).any():  # nothing looks feasible: take the most likely candidate
                values = log_feasible.copy() if log_feasible is not None else np.zeros(len(candidates))
                values[chosen] = -np.inf
            i = int(np.argmax(values))
            chosen.append(i)
            pend.append(candidates[i])
        return chosen

    def _log_feasibility(self, C: torch.Tensor) -> np.ndarray | None:
        """``log P(success)`` at each candidate (``n x d``), or None without failures.

        A GP regression on success (1) / failure (0) labels of every experiment told,
        read as a probit: ``P = Phi((mu - 1/2) / sqrt(sigma^2 + 0.1^2))``. Confidently
        failing regions get a very small probability, uncertain ones stay near 1/2 — a
        light stand-in for a GP classifier that is robust with a handful of failures.
        """
        if not self.opts.feasibility or all(o.ok for o in self.observations):
            return None
        X = torch.as_tensor(encode(self.space, [o.params for o in self.observations]), dtype=DTYPE)
        labels = torch.as_tensor([[1.0 if o.ok else 0.0] for o in self.observations], dtype=DTYPE)
        model, _ = self._model(X, labels, warm=None)  # hyperparameters of its own, never reused
        from scipy.stats import norm

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = model.posterior(C)
            mean = post.mean.squeeze(-1).numpy()
            var = post.variance.squeeze(-1).numpy()
        out: np.ndarray = norm.logcdf((mean - 0.5) / np.sqrt(var + 0.01))
        return out
