"""Bluesky plans: generators of messages; they never block and never touch drivers."""

from labos.plans.experiment import PlannedStep, experiment_plan, resolve_steps

__all__ = ["PlannedStep", "experiment_plan", "resolve_steps"]
