"""The kernel of the GP over mixed categorical and real inputs: Hamming terms and a Matérn term, fused.

A stationary kernel on one-hot columns (Matérn over every column) learns one
length-scale per *choice*: with 100 choices and 40 experiments that is 100 parameters
the data barely inform, and under a prior sized for unit-cube coordinates (length-scales
near 0.5) a change of choice decorrelates two points almost completely, so nothing
learnt about one choice carries to another. The Hamming (overlap) kernel instead counts,
per categorical variable, whether two points differ (the overlap kernel of Ru et al.,
CoCaBO, ICML 2020, and BoTorch's ``CategoricalKernel``), weighted by one length-scale per
variable: ``h(x, x') = exp(-sum_v [x_v != x'_v] / l_v)``.

:class:`MixedKernel` is the sum of a product term (interactions), one Hamming term per
categorical variable (main effects) and a Matérn-5/2 term over the real inputs, each
scaled. It computes in one ``forward`` what a composition of gpytorch kernels (a sum of
five or more ``ScaleKernel`` s around a product) computes in a tree of lazy tensors: the
same values, parameters and priors, at 0.6 of the time per likelihood evaluation, which
is what fitting the GP spends its time on.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from gpytorch.constraints import Positive
from gpytorch.kernels import Kernel
from gpytorch.priors import GammaPrior, Prior


def _lengthscale(module: MixedKernel) -> torch.Tensor:
    return module.lengthscale


def _set_lengthscale(module: MixedKernel, value: torch.Tensor | float) -> None:
    module._set_positive("raw_lengthscale", value)


def _category_lengthscale(module: MixedKernel) -> torch.Tensor:
    return module.category_lengthscale


def _set_category_lengthscale(module: MixedKernel, value: torch.Tensor | float) -> None:
    module._set_positive("raw_category_lengthscale", value)


class MixedKernel(Kernel):
    r"""``s0 Matern(reals) h_all + sum_v s_v h_v + s_r Matern(reals)`` on an encoded mixed space.

    ``h_all`` is the Hamming kernel over every categorical variable (one length-scale
    each), ``h_v`` the Hamming kernel of variable ``v`` alone (a length-scale of its own),
    ``Matern`` the ARD Matérn-5/2 kernel over the real columns (the same length-scales in
    both terms that use it). The product models interactions, the sum the main effect of
    each variable (what one choice does whatever the others are): the structure of
    CoCaBO (Ru et al., ICML 2020) and BoTorch's ``MixedSingleTaskGP`` (sum plus product),
    with a main effect per categorical variable. Without real columns the Matérn terms
    drop out: ``s0 h_all + sum_v s_v h_v``.

    Parameters
    ----------
    blocks : list of list of int
        For each categorical variable, the columns of its one-hot block in the encoded
        input (:func:`labos.planners.encoding.categorical_blocks`), each a run of adjacent
        columns.
    reals : list of int
        The real (non-one-hot) columns.
    lengthscale_prior : gpytorch.priors.Prior, optional
        Prior of the Matérn length-scales. It enters the likelihood once for each of the
        two terms that share them (as it does when one gpytorch ``MaternKernel`` sits in two
        terms of a composed kernel, the model benchmarked): Gamma(3, 6) counted twice is
        Gamma(5, 12) up to a constant.
    batch_shape : torch.Size, optional
        One set of hyperparameters per objective.

    Notes
    -----
    The Hamming length-scales have the prior Gamma(3, 1) (mean 3: a change of one
    variable keeps a correlation of about 0.7 a priori), the prior EDBO (Shields et al.,
    Nature 590, 89 (2021)) puts on one-hot reaction encodings. The output scales have no
    prior. Parameters: ``raw_outputscale`` (``... x T``: the product term, one per
    variable, the real term), ``raw_category_lengthscale`` (``... x 2 x V``: in the
    product term, in the main-effect terms), ``raw_lengthscale`` (``... x 1 x R``,
    Matérn), each positive through a softplus, each starting at ``softplus(0)``.
    """

    has_lengthscale = False  # registered below: the Matérn length-scales only where there are real columns

    def __init__(
        self,
        blocks: list[list[int]],
        reals: list[int],
        lengthscale_prior: Prior | None = None,
        batch_shape: torch.Size | None = None,
    ) -> None:
        super().__init__(batch_shape=batch_shape)
        if not blocks:
            raise ValueError("MixedKernel needs at least one categorical variable")
        if any(b != list(range(b[0], b[0] + len(b))) for b in blocks):
            raise ValueError(f"each one-hot block must be a run of adjacent columns, got {blocks}")
        self.blocks = [slice(b[0], b[0] + len(b)) for b in blocks]  # views, not copies, of the input
        self.reals = list(reals)
        n_vars, batch = len(blocks), tuple(self.batch_shape)
        n_terms = 1 + n_vars + (1 if self.reals else 0)
        self.register_parameter("raw_outputscale", torch.nn.Parameter(torch.zeros(*batch, n_terms)))
        self.register_constraint("raw_outputscale", Positive())
        self.register_parameter("raw_category_lengthscale", torch.nn.Parameter(torch.zeros(*batch, 2, n_vars)))
        self.register_constraint("raw_category_lengthscale", Positive())
        # each prior with its setter, for BoTorch's retry of a failed fit from values drawn from the priors
        self.register_prior(
            "category_lengthscale_prior", GammaPrior(3.0, 1.0), _category_lengthscale, _set_category_lengthscale
        )
        if self.reals:
            self.register_parameter("raw_lengthscale", torch.nn.Parameter(torch.zeros(*batch, 1, len(self.reals))))
            self.register_constraint("raw_lengthscale", Positive())
            if lengthscale_prior is not None:
                self.register_prior("lengthscale_prior", lengthscale_prior, _lengthscale, _set_lengthscale)
                self.register_prior("lengthscale_prior_main", lengthscale_prior, _lengthscale, _set_lengthscale)

    def _set_positive(self, name: str, value: torch.Tensor | float) -> None:
        """Set the positive parameter whose raw (softplus-inverse) form is ``name``."""
        raw = getattr(self, name)
        value = torch.as_tensor(value).to(raw)
        self.initialize(**{name: getattr(self, f"{name}_constraint").inverse_transform(value)})

    @property
    def outputscale(self) -> torch.Tensor:
        """Scales of the product term, of each variable's term and of the real term (``... x T``)."""
        value: torch.Tensor = self.raw_outputscale_constraint.transform(self.raw_outputscale)
        return value

    @property
    def category_lengthscale(self) -> torch.Tensor:
        """Hamming length-scales: row 0 in the product term, row 1 each variable's own (``... x 2 x V``)."""
        value: torch.Tensor = self.raw_category_lengthscale_constraint.transform(self.raw_category_lengthscale)
        return value

    @property
    def lengthscale(self) -> torch.Tensor:
        """Matérn length-scales of the real columns (``... x 1 x R``)."""
        value: torch.Tensor = self.raw_lengthscale_constraint.transform(self.raw_lengthscale)
        return value

    def relevance(self) -> torch.Tensor:
        """What changing each categorical variable alone costs in covariance (``... x V``).

        ``k(x, x) - k(x, x')`` for ``x'`` equal to ``x`` but for one variable's choice:
        ``s0 (1 - exp(-1 / l_all_v)) + s_v (1 - exp(-1 / l_v))``, the variance (on the
        model's standardised scale) that one change of ``v`` lets the outcome move by. A
        variable whose choice the fitted model finds to matter scores high, whatever its
        number of choices.
        """
        s, ls = self.outputscale, self.category_lengthscale
        n_vars = len(self.blocks)
        lost = 1.0 - torch.exp(-1.0 / ls)  # ... x 2 x V
        value: torch.Tensor = s[..., :1] * lost[..., 0, :] + s[..., 1 : 1 + n_vars] * lost[..., 1, :]
        return value

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params: Any) -> torch.Tensor:
        """The kernel matrix (or its diagonal) between ``x1`` and ``x2`` (``... x n x d``, ``... x m x d``)."""
        s = self.outputscale
        ls = self.category_lengthscale
        n_vars = len(self.blocks)
        if diag:  # mismatch ... x n x V; scales broadcast over n
            mismatch = torch.stack([(1.0 - (x1[..., c] * x2[..., c]).sum(-1)).clamp_min(0.0) for c in self.blocks], -1)
            ls_all, ls_own = ls[..., None, 0, :], ls[..., None, 1, :]
            scale = s[..., None, :]
        else:  # a product of one-hot blocks: 1 where the choices agree (faster than comparing argmaxes)
            mismatch = torch.stack(
                [(1.0 - x1[..., c] @ x2[..., c].transpose(-2, -1)).clamp_min(0.0) for c in self.blocks], -1
            )  # ... x n x m x V
            ls_all, ls_own = ls[..., None, None, 0, :], ls[..., None, None, 1, :]
            scale = s[..., None, None, :]
        h_all = torch.exp(-(mismatch / ls_all).sum(-1))
        out = (torch.exp(-mismatch / ls_own) * scale[..., 1 : 1 + n_vars]).sum(-1)
        if not self.reals:
            return out + scale[..., 0] * h_all
        a, b = x1[..., self.reals], x2[..., self.reals]
        mean = a.mean(dim=-2, keepdim=True)  # centred as gpytorch's MaternKernel centres, for the same values
        dist: torch.Tensor = self.covar_dist(
            (a - mean).div(self.lengthscale), (b - mean).div(self.lengthscale), diag=diag, **params
        )
        matern = (math.sqrt(5) * dist).add(1).add(5.0 / 3.0 * dist**2) * torch.exp(-math.sqrt(5) * dist)
        return out + scale[..., 0] * matern * h_all + scale[..., 1 + n_vars] * matern
