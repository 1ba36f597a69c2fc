"""The GP of the ``botorch`` planner: training data, fitting (warm-started, on a subset), building."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from labos.planners.base import BasePlanner
from labos.planners.botorch.kernels import MixedKernel
from labos.planners.botorch.options import BotorchOptions, power_transform
from labos.planners.encoding import categorical_blocks, encode

DTYPE = torch.double
"""Every tensor of the planner is double precision (GP fitting in float32 is unstable)."""


class GPModel(BasePlanner):
    """The model half of :class:`~labos.planners.botorch.planner.BotorchPlanner`."""

    opts: BotorchOptions
    _hypers: dict[str, torch.Tensor] | None

    def _training_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        ok = [obs for obs in self.observations if obs.ok]
        X = torch.as_tensor(encode(self.space, [o.params for o in ok]), dtype=DTYPE)
        Y = torch.as_tensor([[-v for v in self.losses(o)] for o in ok], dtype=DTYPE)  # BoTorch maximises
        if self.opts.output_warp == "copula" and Y.shape[0] > 2:
            from scipy.stats import norm, rankdata

            ranks = np.column_stack([rankdata(col) for col in Y.numpy().T])
            Y = torch.as_tensor(norm.ppf((ranks - 0.5) / Y.shape[0]), dtype=DTYPE)
        elif self.opts.output_warp == "power" and Y.shape[0] > 2:
            Y = torch.as_tensor(np.column_stack([-power_transform(-col) for col in Y.numpy().T]), dtype=DTYPE)
        return X, Y

    def _fit_subset(self, Y: torch.Tensor) -> torch.Tensor:
        """Indices of the points hyperparameters are fitted on: all, or the best and most recent."""
        n = Y.shape[0]
        m = self.opts.max_fit_points
        if n <= m:
            return torch.arange(n)
        best = torch.argsort(Y[:, 0], descending=True)[: m // 2]
        recent = torch.arange(n - (m - m // 2), n)
        subset: torch.Tensor = torch.unique(torch.cat([best, recent]))
        return subset

    def _model(
        self, X: torch.Tensor, Y: torch.Tensor, warm: dict[str, torch.Tensor] | None
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        """Fit a GP on at most ``max_fit_points``, starting from the hyperparameters ``warm``.

        Returns the model (conditioned on every point) and its fitted hyperparameters.
        """
        idx = self._fit_subset(Y)
        model = self._fitted(X[idx], Y[idx], warm)
        hypers = {
            k: v.detach().clone()
            for k, v in model.state_dict().items()
            if k.startswith(("covar_module", "likelihood", "mean_module"))
        }
        if idx.numel() == X.shape[0]:
            return model, hypers
        full = self._build(X, Y, hypers)  # condition on every point with the fitted hyperparameters
        full.eval()
        return full, hypers

    def _fitted(self, X: torch.Tensor, Y: torch.Tensor, warm: dict[str, torch.Tensor] | None) -> Any:
        """A GP on ``X, Y`` with hyperparameters fitted by maximum (posterior) likelihood.

        The fit starts from ``warm`` (the previous proposal's hyperparameters) when given.
        If every attempt fails (a numerically singular fit), it is retried from the default
        initialisation; if that fails too, the starting hyperparameters are kept, with a
        warning, rather than losing the proposal.
        """
        from botorch.exceptions.errors import ModelFittingError
        from botorch.fit import fit_gpytorch_mll
        from gpytorch.mlls import ExactMarginalLogLikelihood

        starts = [warm, None] if warm is not None else [None]
        for start in starts:
            model = self._build(X, Y, start)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # optimizer warnings are recovered from by BoTorch itself
                    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
                return model
            except ModelFittingError:
                continue
        model = self._build(X, Y, warm)
        model.eval()
        warnings.warn(
            f"botorch planner: the GP fit failed on {X.shape[0]} points from every start; "
            "proposing with the previous (or default) hyperparameters",
            RuntimeWarning,
            stacklevel=2,
        )
        return model

    @staticmethod
    def _marginals(model: Any, C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and variance of ``model`` at each row of ``C`` (``n x d``), each ``n x m``.

        Each candidate's own (marginal) posterior: the candidates go in as a batch of
        single points, never as one joint posterior, whose ``n x n`` covariance took
        seconds and gigabytes on a pool of a few thousand.
        """
        means, variances = [], []
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jitter notices from near-duplicate points
            for chunk in C.split(4096):
                post = model.posterior(chunk.unsqueeze(-2))  # b x 1 x d: b posteriors of one point
                means.append(post.mean.squeeze(-2))
                variances.append(post.variance.squeeze(-2))
        return torch.cat(means), torch.cat(variances)

    def _build(self, X: torch.Tensor, Y: torch.Tensor, hypers: dict[str, torch.Tensor] | None = None) -> Any:
        """The (unfitted) GP on ``X, Y``, with hyperparameters ``hypers`` loaded when given."""
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Normalize, Standardize
        from gpytorch.kernels import MaternKernel, ScaleKernel
        from gpytorch.priors import GammaPrior, LogNormalPrior

        d, m = X.shape[-1], Y.shape[-1]
        batch = torch.Size([m]) if m > 1 else torch.Size([])
        prior: Any = None
        if self.opts.lengthscale_prior == "gamma":
            prior = GammaPrior(3.0, 6.0)
        elif self.opts.lengthscale_prior == "dim_scaled":
            prior = LogNormalPrior(loc=math.sqrt(2) + math.log(d) / 2, scale=math.sqrt(3))
        blocks = categorical_blocks(self.space) if self.opts.categorical_kernel == "hamming" else []
        onehot = sorted(c for b in blocks for c in b)
        cont = [c for c in range(d) if c not in set(onehot)]
        kernel: Any
        if blocks:
            kernel = MixedKernel(blocks, cont, lengthscale_prior=prior, batch_shape=batch)
        else:
            base = MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_prior=prior, batch_shape=batch)
            kernel = ScaleKernel(base, batch_shape=batch)
        bounds = torch.stack([torch.zeros(d, dtype=DTYPE), torch.ones(d, dtype=DTYPE)])
        transform: Any = Normalize(d, bounds=bounds)
        if self.opts.input_warp and cont:
            from botorch.models.transforms.input import ChainedInputTransform, Warp

            concentration = LogNormalPrior(0.0, 0.75**0.5)  # centred on the identity warp
            warp = Warp(
                d=d,
                indices=cont,  # not the one-hot columns of categories
                concentration1_prior=concentration,
                concentration0_prior=concentration,
                batch_shape=batch,
            )
            transform = ChainedInputTransform(normalize=transform, warp=warp)
        model = SingleTaskGP(X, Y, covar_module=kernel, input_transform=transform, outcome_transform=Standardize(m))
        if hypers is not None:
            model.load_state_dict(hypers, strict=False)
        return model
