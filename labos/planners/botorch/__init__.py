"""Bayesian optimisation on torch (BoTorch): options, model, acquisition and the planner, apart.

:class:`BotorchPlanner` is imported on first use: its modules import torch (seconds),
which checking a campaign's options (:mod:`labos.planners.botorch.options`) does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labos.planners.botorch.options import BotorchOptions, power_transform

if TYPE_CHECKING:
    from labos.planners.botorch.planner import BotorchPlanner


def __getattr__(name: str) -> Any:
    if name == "BotorchPlanner":
        from labos.planners.botorch.planner import BotorchPlanner

        return BotorchPlanner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BotorchOptions", "BotorchPlanner", "power_transform"]
