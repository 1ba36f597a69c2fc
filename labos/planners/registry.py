"""Planner registry: built-ins register themselves; third parties use entry points.

Third-party planners declare, in their ``pyproject.toml``::

    [project.entry-points."labos.planners"]
    my-planner = "my_package.module:MyPlanner"

Discovery is lazy and cached; a broken plugin warns instead of taking the process down.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from labos.core.campaign import Objective, PlannerSpec
from labos.core.errors import ConfigurationError, RegistryError
from labos.core.space import SearchSpace
from labos.planners.base import Planner

ENTRY_POINT_GROUP = "labos.planners"
_BUILTIN: dict[str, str] = {
    "random": "labos.planners.random",
    "sobol": "labos.planners.sobol",
    "skopt": "labos.planners.skopt",
    "botorch": "labos.planners.botorch.planner",
    "physbo": "labos.planners.physbo",
    "gp-lcb": "labos.planners.baselines",
    "rf-lcb": "labos.planners.baselines",
    "baybe": "labos.planners.peers",
    "ax": "labos.planners.peers",
}
"""Built-in planners by name and module: looking one up imports its module only (torch for botorch alone)."""
_BUILTIN_MODULES = tuple(_BUILTIN.values())
_TRAITS: dict[str, tuple[str, bool]] = {
    "botorch": ("labos.planners.botorch.options:BotorchOptions", True),
}
"""Built-ins whose module imports torch (seconds): their options model and whether they take several
objectives, so that checking a campaign does not import torch. A test keeps these equal to the classes."""

_registry: dict[str, type] = {}
_loaded = False

T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator registering a planner under ``name``.

    Raises
    ------
    RegistryError
        If ``name`` is already registered to another class.
    """

    def deco(cls: T) -> T:
        existing = _registry.get(name)
        if existing is not None and existing is not cls:
            raise RegistryError(
                f"planner name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        cls.name = name  # type: ignore[attr-defined]
        _registry[name] = cls
        return cls

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the process down
            warnings.warn(f"labos planner plugin {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)
            continue
        if ep.name in _registry and _registry[ep.name] is not cls:
            warnings.warn(
                f"labos planner plugin {ep.name!r} ({ep.value}) ignored: the name is taken by "
                f"{_registry[ep.name].__module__}",
                stacklevel=2,
            )
            continue
        register(ep.name)(cls)


def available() -> list[str]:
    """Names of every registered planner, sorted."""
    _load()
    return sorted(_registry)


def get_planner_class(name: str) -> type:
    """Look a planner class up by name; the error lists the known names."""
    if name not in _registry and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])  # a built-in: no need to import every planner and plugin
    if name not in _registry:
        _load()
    try:
        return _registry[name]
    except KeyError:
        raise RegistryError(f"unknown planner {name!r}; known planners: {', '.join(sorted(_registry))}") from None


def planner_traits(name: str) -> tuple[type[BaseModel] | None, bool]:
    """Planner ``name``'s options model (``None``: it takes none) and whether it takes several objectives.

    Raises
    ------
    RegistryError
        Unknown planner name.
    """
    if name not in _registry and name in _TRAITS:
        path, multi = _TRAITS[name]
        module, attr = path.split(":")
        options: type[BaseModel] = getattr(importlib.import_module(module), attr)
        return options, multi
    cls = get_planner_class(name)
    return getattr(cls, "Options", None), bool(getattr(cls, "multi_objective", True))


def option_problems(name: str, options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Validate ``options`` for planner ``name``: ``(option path, message)`` pairs."""
    model, _ = planner_traits(name)
    if model is None:
        return []
    try:
        model(**options)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                known = ", ".join(model.model_fields)
                out.append((where, f"unknown option for planner {name!r} (options: {known or 'none'})"))
            else:
                msg = err["msg"].removeprefix("Value error, ")
                out.append((where, f"{msg} (got {err.get('input')!r})"))
        return out
    return []


def create_planner(spec: PlannerSpec, space: SearchSpace, objectives: list[Objective], seed: int) -> Planner:
    """Build the planner a campaign asks for.

    Raises
    ------
    RegistryError
        Unknown planner name.
    ConfigurationError
        Bad options, naming each offending option.
    """
    cls = get_planner_class(spec.name)
    problems = option_problems(spec.name, spec.options)
    if problems:
        raise ConfigurationError("; ".join(f"planner.options.{k}: {m}" for k, m in problems))
    planner: Planner = cls(space, objectives, seed=seed, options=spec.options)
    return planner
