"""A kernel for categorical variables on their one-hot encoding: one length-scale per variable.

A stationary kernel on one-hot columns (Matérn over every column) learns one
length-scale per *choice*: with 100 choices and 40 experiments that is 100 parameters
the data barely inform, and under a prior sized for unit-cube coordinates (length-scales
near 0.5) a change of choice decorrelates two points almost completely, so nothing
learnt about one choice carries to another. :class:`HammingKernel` counts, per
categorical variable, whether two points differ (the overlap kernel of Ru et al.,
CoCaBO, ICML 2020, and BoTorch's ``CategoricalKernel``), weighted by one length-scale per
variable: ``k(x, x') = exp(-sum_v [x_v != x'_v] / l_v)``.
"""

from __future__ import annotations

from typing import Any

import torch
from gpytorch.kernels import Kernel


class HammingKernel(Kernel):
    """``exp(-sum_v mismatch_v / l_v)`` over the one-hot blocks of the categorical variables.

    Parameters
    ----------
    blocks : list of list of int
        For each categorical variable, the columns of its one-hot block in the encoded
        input (:func:`labos.planners.encoding.categorical_blocks`).
    **kwargs
        Passed to :class:`gpytorch.kernels.Kernel` (``lengthscale_prior``, ``batch_shape``).
    """

    has_lengthscale = True

    def __init__(self, blocks: list[list[int]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # one length-scale per variable; not gpytorch's ard_num_dims, which would demand
        # that many input columns (the input is the whole encoding)
        shape = (*self.batch_shape, 1, len(blocks))
        self.raw_lengthscale = torch.nn.Parameter(torch.zeros(shape, dtype=torch.get_default_dtype()))
        if any(b != list(range(b[0], b[0] + len(b))) for b in blocks):
            raise ValueError(f"each one-hot block must be a run of adjacent columns, got {blocks}")
        self.blocks = [slice(b[0], b[0] + len(b)) for b in blocks]  # views, not copies, of the input

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params: Any) -> torch.Tensor:
        """The kernel matrix (or its diagonal) between ``x1`` and ``x2`` (``... x n x d``, ``... x m x d``)."""
        ls = self.lengthscale  # ... x 1 x V
        dist: torch.Tensor | float = 0.0
        for v, cols in enumerate(self.blocks):
            a, b = x1[..., cols], x2[..., cols]
            if diag:
                mismatch = (1.0 - (a * b).sum(-1)).clamp_min(0.0)  # ... x n
                dist = dist + mismatch / ls[..., 0, v].unsqueeze(-1)
            else:  # a product of one-hot blocks: 1 where the choices agree (faster than comparing argmaxes)
                mismatch = (1.0 - a @ b.transpose(-2, -1)).clamp_min(0.0)  # ... x n x m
                dist = dist + mismatch / ls[..., v : v + 1]
        return torch.exp(-torch.as_tensor(dist))
