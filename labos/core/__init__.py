"""Core models of labos: search spaces, campaigns, results, errors and settings.

This layer depends on nothing else in labos.
"""

from labos.core.campaign import Budget, Campaign, InstrumentSpec, Objective, PlannerSpec, StepSpec, WorkflowSpec
from labos.core.errors import (
    AnalysisError,
    ConfigurationError,
    DeviceFault,
    LabosError,
    OutOfBoundsError,
    Problem,
    RegistryError,
    SpecError,
    StoreError,
)
from labos.core.results import Observation, Proposal
from labos.core.space import (
    CategoricalParameter,
    CompositionParameter,
    DiscreteParameter,
    IntegerParameter,
    Point,
    RealParameter,
    SearchSpace,
)

__all__ = [
    "AnalysisError",
    "Budget",
    "Campaign",
    "CategoricalParameter",
    "CompositionParameter",
    "ConfigurationError",
    "DeviceFault",
    "DiscreteParameter",
    "InstrumentSpec",
    "IntegerParameter",
    "LabosError",
    "Objective",
    "Observation",
    "OutOfBoundsError",
    "PlannerSpec",
    "Point",
    "Problem",
    "Proposal",
    "RealParameter",
    "RegistryError",
    "SearchSpace",
    "SpecError",
    "StepSpec",
    "StoreError",
    "WorkflowSpec",
]
