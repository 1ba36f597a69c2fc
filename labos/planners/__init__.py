"""Planners: propose experiments through ``ask`` / ``tell`` (see :mod:`labos.planners.base`)."""

from labos.planners.base import BasePlanner, Planner, PlannerOptions
from labos.planners.registry import available, create_planner, get_planner_class, register

__all__ = ["BasePlanner", "Planner", "PlannerOptions", "available", "create_planner", "get_planner_class", "register"]
