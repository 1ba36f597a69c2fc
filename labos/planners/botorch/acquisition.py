"""Acquisition of the ``botorch`` planner: UCB / LogEI / qLogNEI / qLogNEHVI, greedy batches, feasibility."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from labos.core.space import CategoricalParameter, ParamValue
from labos.planners.botorch.kernels import MixedKernel
from labos.planners.botorch.model import DTYPE, GPModel
from labos.planners.encoding import encode


class Acquisition(GPModel):
    """The acquisition half of :class:`~labos.planners.botorch.planner.BotorchPlanner`."""

    _last_rescue: int
    _log: list[dict[str, Any]]
    stats: dict[str, int]

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
        probe: tuple[np.ndarray, dict[str, Any]] | None = None
        if self._stalled():
            model, rescue = self._rescue(model, X, Y, C.squeeze(-2))
            if rescue is not None:
                return self._space_filling(C.squeeze(-2), n, pending, rescue)
            probe = self._probe(model, candidates, pending)
        log_feasible = self._log_feasibility(C.squeeze(-2))
        chosen: list[int] = []
        pend = list(pending)
        for j in range(n):
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
            if j == 0 and probe is not None and np.isfinite(values[probe[0]]).any():
                values = np.where(probe[0], values, -np.inf)  # the probe: the best candidate at a little-tried level
                # while the run stays stalled, probe again after probe_every more experiments
                self._last_rescue = (
                    sum(o.ok for o in self.observations) - self.opts.stall_cycles + self.opts.probe_every
                )
                self.stats["rescue_probes"] += 1
                self._log.append(probe[1])
            if not np.isfinite(values).any():  # nothing looks feasible: take the most likely candidate
                values = log_feasible.copy() if log_feasible is not None else np.zeros(len(candidates))
                values[chosen] = -np.inf
            i = self._best_index(values)
            chosen.append(i)
            pend.append(candidates[i])
        return chosen

    def _best_index(self, values: np.ndarray) -> int:
        """The index of the largest value; equal maxima (to 1e-9) broken at random, not by the candidates' order."""
        top = float(values.max())
        best = np.flatnonzero(values >= top - 1e-9 * max(abs(top), 1.0))
        return int(best[0]) if len(best) == 1 else int(self.rng.choice(best))

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

        mean, var = (t[:, 0].numpy() for t in self._marginals(model, C))
        out: np.ndarray = norm.logcdf((mean - 0.5) / np.sqrt(var + 0.01))
        return out

    # ------------------------------------------------------------- rescue
    def _stalled(self) -> bool:
        """The best primary loss has not improved in the last ``stall_cycles`` successes, nor since the last rescue."""
        k = self.opts.stall_cycles
        ok = [self.loss(o) for o in self.observations if o.ok]
        if k == 0 or len(ok) <= k or len(ok) - self._last_rescue < k:
            return False
        return min(ok[-k:]) >= min(ok[:-k])

    def _collapse(self, model: Any, C: torch.Tensor) -> str | None:
        """Why the fitted model says nothing useful about ``C`` (``n x d``), or None.

        Collapsed: the fitted noise is at least as large as the signal's variance (the
        model explains the data as noise), or its mean varies by less than 0.1 standard
        deviation of the (transformed) data across the candidates (a flat model, e.g.
        every length-scale driven far beyond the space).
        """
        noise = float(model.likelihood.noise.detach().flatten()[0])
        with torch.no_grad():
            x0 = model.train_inputs[0][..., :1, :]
            signal = float(model.covar_module(x0, x0, diag=True).flatten()[0])  # the prior variance at a point
        if noise >= signal:
            return f"the fitted noise variance ({noise:.3g}) is at least the signal variance ({signal:.3g})"
        mean = self._marginals(model, C)[0][:, 0]
        spread = float(mean.std()) / max(float(model.outcome_transform.stdvs.flatten()[0]), 1e-12)
        if spread < 0.1:
            return f"the model's mean varies by {spread:.3g} standard deviations across the candidates (flat)"
        return None

    def _rescue(self, model: Any, X: torch.Tensor, Y: torch.Tensor, C: torch.Tensor) -> tuple[Any, str | None]:
        """A stalled run with a collapsed model: refit from the default start, else a space-filling pick.

        Returns the model to use and, when the refit collapsed too, the reason for a
        space-filling pick (None: use the model). Every rescue is logged (``take_log``)
        and counted (``stats``).
        """
        reason = self._collapse(model, C)
        if reason is None:
            return model, None
        self._last_rescue = sum(o.ok for o in self.observations)
        refit, hypers = self._model(X, Y, None)  # the prior's starting point, not the last fit's
        again = self._collapse(refit, C)
        if again is None:
            self._hypers = hypers
            self.stats["rescue_refits"] += 1
            self._log.append({"kind": "rescue", "action": "refit", "reason": reason})
            return refit, None
        self.stats["rescue_space_filling"] += 1
        return model, f"{reason}; refitted from the default start, {again}"

    def _probe(
        self, model: Any, candidates: Sequence[Mapping[str, ParamValue]], pending: Sequence[Mapping[str, ParamValue]]
    ) -> tuple[np.ndarray, dict[str, Any]] | None:
        """Candidates at the least-tried levels of the categorical variable that matters most, or None.

        A stalled run whose model has not collapsed has often settled on the first fair
        level of a variable that matters, every other level of it judged on one draw
        (benchmarks/results/2026-12-06_heldout2; the option is off by default, see
        benchmarks/results/2026-12-06_probe). The variable that matters is the one
        the fitted Hamming kernel finds most relevant (:meth:`MixedKernel.relevance`: the
        covariance one change of its choice costs). Its least-tried levels, when tried at
        most once (told or pending), are probed: the returned mask (over
        ``candidates``) keeps the candidates at those levels, and the acquisition picks
        among them; the log entry goes with it, for the caller to record when the probe is
        made (not when none of those candidates looks feasible). Variables without such a
        level are passed over, by relevance. None when no variable has one, when the option
        is off, or when the model has no Hamming kernel (no categorical variable, or the
        one-hot kernel).
        """
        kernel = model.covar_module
        if not self.opts.probe_levels or not isinstance(kernel, MixedKernel):
            return None
        cats = [(name, p) for name, p in self.space.items() if isinstance(p, CategoricalParameter)]
        if self.opts.probe_target == "settled":
            return self._probe_settled(cats, candidates)
        with torch.no_grad():
            relevance = kernel.relevance().reshape(-1, len(cats))[0].tolist()  # the first objective's
        tried = [o.params for o in self.observations if o.ok] + list(pending)
        for v in sorted(range(len(cats)), key=lambda v: -relevance[v]):
            name, p = cats[v]
            levels = np.array([p.choices.index(c[name]) for c in candidates])
            present = np.unique(levels)
            counts = np.zeros(len(p.choices), dtype=int)
            for t in tried:
                counts[p.choices.index(t[name])] += 1
            few = int(counts[present].min())
            if few > 1:
                continue
            probed = [int(i) for i in present if counts[i] == few]
            reason = (
                f"no better result in {self.opts.stall_cycles} experiments with a sound model; of the "
                f"categorical variables {name} matters most to it (relevance {relevance[v]:.3g}) and "
                f"{len(probed)} of its levels were tried {few} time{'' if few == 1 else 's'}"
            )
            return np.isin(levels, probed), _probe_entry(reason, name, [p.choices[i] for i in probed])
        return None

    def _probe_settled(
        self, cats: list[tuple[str, CategoricalParameter]], candidates: Sequence[Mapping[str, ParamValue]]
    ) -> tuple[np.ndarray, dict[str, Any]] | None:
        """Candidates that change a choice the stalled run has kept in every one of its last experiments.

        The categorical variables whose level all of the last ``stall_cycles`` successful
        experiments share are the ones the run has stopped varying; the returned mask keeps
        the candidates that differ from that level in at least one of them (the acquisition
        picks among them). None when the run still varies every categorical variable.
        """
        recent = [o.params for o in self.observations if o.ok][-self.opts.stall_cycles :]
        settled = {name: recent[0][name] for name, _ in cats if all(r[name] == recent[0][name] for r in recent)}
        if not settled:
            return None
        mask = np.array([any(c[name] != level for name, level in settled.items()) for c in candidates])
        if not mask.any():
            return None
        kept = ", ".join(f"{name} = {level}" for name, level in settled.items())
        reason = (
            f"no better result in {self.opts.stall_cycles} experiments with a sound model, all of "
            f"them at {kept}; the probe changes at least one of these"
        )
        return mask, _probe_entry(reason, list(settled), list(settled.values()))

    def _space_filling(
        self, C: torch.Tensor, n: int, pending: Sequence[Mapping[str, ParamValue]], reason: str
    ) -> list[int]:
        """``n`` candidates (rows of ``C``), each the farthest from every told, pending and chosen point.

        Equal distances (common on a grid) are broken at random, not by the candidates' order.
        """
        seen = [o.params for o in self.observations] + list(pending)
        ref = torch.as_tensor(encode(self.space, seen), dtype=DTYPE) if seen else C[:0]
        nearest = torch.cdist(C, ref).min(-1).values if len(ref) else torch.full((len(C),), math.inf, dtype=DTYPE)
        chosen: list[int] = []
        for j in range(n):
            nearest[chosen] = -1.0
            i = self._best_index(nearest.numpy())
            chosen.append(i)
            nearest = torch.minimum(nearest, torch.cdist(C, C[i : i + 1]).squeeze(-1))
            self._log.append({"kind": "rescue", "index": j, "action": "space_filling", "reason": reason})
        return chosen

    def take_log(self) -> list[dict[str, Any]]:
        """Rescues since the last call, for the campaign's decision log, then forget them.

        ``{"kind": "rescue", "action": "refit" | "space_filling" | "probe", "reason": ...}``;
        space-filling and probe entries name the ``index`` of their point in the last
        ``ask`` (a probe's is 0), a probe also the ``variable`` and the ``levels`` it probed.
        """
        out, self._log = self._log, []
        return out


def _probe_entry(reason: str, variable: str | list[str], levels: list[Any]) -> dict[str, Any]:
    """The decision-log entry of a probe: a rescue of the ask's first point (``index`` 0)."""
    return {"kind": "rescue", "index": 0, "action": "probe", "reason": reason, "variable": variable, "levels": levels}
