"""Options of the ``botorch`` planner, and the output power transform."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from pydantic import Field

from labos.planners.base import PlannerOptions


class BotorchOptions(PlannerOptions):
    """Options of the ``botorch`` planner."""

    acquisition: Literal["ucb", "logei", "qlognei"] = Field(
        default="ucb",
        description="UCB (qUCB for batches and pending points), or LogEI (qLogNEI for batches and pending points). "
        "UCB with beta = 1 found the top candidates of four of the five Liang et al. datasets faster than "
        "LogEI and than the published best (benchmarks/results).",
    )
    beta: float = Field(default=1.0, gt=0, description="UCB exploration weight: mean + sqrt(beta) standard deviations.")
    n_initial_points: int = Field(default=5, ge=1, le=1000, description="Space-filling proposals before the GP.")
    n_candidates: int = Field(default=2048, ge=16, le=200_000, description="Random candidates scored per proposal.")
    n_local: int = Field(default=512, ge=0, le=100_000, description="Candidates perturbed around the best points.")
    lengthscale_prior: Literal["gamma", "dim_scaled", "none"] = Field(
        default="gamma",
        description="Gamma(3, 6) (mean 0.5 in unit coordinates), BoTorch's dimension-scaled log-normal, or none.",
    )
    feasibility: bool = Field(
        default=True,
        description="Learn where experiments fail (a GP on success/failure) and avoid proposing there.",
    )
    output_warp: Literal["none", "copula", "power"] = Field(
        default="power",
        description="Model the objective as measured; its ranks mapped to normal quantiles (copula); or a "
        "power transform fitted by maximum likelihood to the values seen (power: Box-Cox when every loss "
        "is positive, else Yeo-Johnson, as in HEBO) — both tame heavy tails, e.g. conductivities spanning decades. "
        "The power transform raised the worst of the five Liang et al. datasets (P3HT, AF 2.55 -> 3.11) and kept "
        "the others above the published best (benchmarks/results).",
    )
    input_warp: bool = Field(
        default=False,
        description="Learn a Kumaraswamy CDF warping of each input with the GP (for responses that change "
        "faster near one end of a range, e.g. small additions of a component). About 4x slower per proposal.",
    )
    categorical_kernel: Literal["hamming", "onehot"] = Field(
        default="hamming",
        description="Categorical variables in the GP: a Hamming (overlap) kernel, one length-scale per variable, in "
        "a sum of one term per variable (main effects) and a product over all inputs (interactions); or one-hot "
        "columns inside the Matérn kernel (one length-scale per choice). Chosen on two development sets (Buchwald a, "
        "Suzuki i) before the held-out table (benchmarks/results/2026-12-04_categorical).",
    )
    stall_cycles: int = Field(
        default=10,
        ge=0,
        description="A run whose best has not improved in this many experiments has its model checked: if the "
        "fit has collapsed (noise as large as the signal, or a mean flat across the candidates) it is refitted "
        "from the default start, and if that collapses too the next proposal is the candidate farthest from "
        "every experiment (space-filling). Each rescue is logged. 0: never.",
    )
    probe_levels: bool = Field(
        default=False,
        description="A stalled run (see stall_cycles) whose model has not collapsed spends its next proposal on a "
        "probe — the acquisition's best among the candidates probe_target names, by default those at a level "
        "tried at most once of the categorical variable the model finds most relevant — and another every "
        "probe_every experiments while it stays stalled; each logged as a rescue (action 'probe'). No effect "
        "without categorical variables or with the one-hot kernel. Off by default: it lifted the tuned mmli_opv "
        "(tops by 40 experiments 6.0 -> 9.1 and 8.3 -> 12.4 at two seeds) but on the eleven held-out categorical "
        "sets, three seeds, it won 3, tied 27 and lost 3 against the default, the same tops found (ratio 1.00) "
        "and the same stuck runs (6 and 6) (benchmarks/results/2026-12-06_probe).",
    )
    probe_every: int = Field(
        default=3,
        ge=1,
        description="While a run stays stalled, probe again after this many experiments (3, 5 and 10 were tried).",
    )
    probe_target: Literal["relevant", "settled"] = Field(
        default="relevant",
        description="What a probe changes: the least-tried levels of the variable the kernel finds most relevant, "
        "or any categorical choice all of the stalled run's last stall_cycles experiments kept (settled). Settled "
        "lifted the tuned mmli_opv and Buchwald a but not a third held-out group (W/T/L 0/25/2, tops found 0.99x; "
        "benchmarks/results/2026-12-06_probe).",
    )
    max_fit_points: int = Field(
        default=400, ge=10, description="Fit hyperparameters on at most this many (best and most recent) points."
    )


def power_transform(losses: np.ndarray) -> np.ndarray:
    """Losses power-transformed towards normality, the exponent fitted by maximum likelihood.

    Box-Cox when every loss is positive, else Yeo-Johnson (the output transform of HEBO,
    Cowen-Rivers et al., JAIR 74, 2022). Order is preserved; a degenerate fit (constant
    or non-finite result) returns the losses unchanged.
    """
    from scipy import stats

    if np.ptp(losses) == 0:
        return losses
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out = stats.boxcox(losses)[0] if losses.min() > 0 else stats.yeojohnson(losses)[0]
    if not np.isfinite(out).all() or out.std() == 0:
        return losses
    result: np.ndarray = out
    return result
