"""Bayesian optimisation on torch (BoTorch): options, model, acquisition and the planner, apart."""

from labos.planners.botorch.options import BotorchOptions, power_transform
from labos.planners.botorch.planner import BotorchPlanner

__all__ = ["BotorchOptions", "BotorchPlanner", "power_transform"]
