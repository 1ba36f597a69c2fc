"""Checks of a campaign against the planners and instruments it names.

:func:`check_campaign` goes beyond the schema: the planner and its options exist, the
instruments can be built, every parameter is consumed by some instrument within its
hard limits, and every objective comes from a metric some measurement yields.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from labos.analysis.registry import metric_names
from labos.core.campaign import Campaign
from labos.core.errors import LabosError, Problem
from labos.core.space import (
    CategoricalParameter,
    CompositionParameter,
    DiscreteParameter,
    IntegerParameter,
    RealParameter,
)
from labos.devices.build import InstrumentError, build_drivers
from labos.devices.drivers import InputSpec
from labos.planners.registry import option_problems, planner_traits

if TYPE_CHECKING:
    from labos.devices.lab import Lab

Inputs = Mapping[str, Mapping[str, InputSpec]]
"""Each instrument's inputs by name (:attr:`Lab.inputs <labos.devices.lab.Lab.inputs>`)."""


def parameter_consumers(campaign: Campaign, inputs: Inputs) -> tuple[dict[int, dict[str, str]], list[Problem]]:
    """Which step takes which parameter (``{step index: {input: parameter}}``), and the problems found.

    A step's instrument takes every parameter named like one of its inputs, plus those
    its ``parameters`` mapping names; each is checked against the input's limits.
    """
    problems: list[Problem] = []
    consumers: dict[int, dict[str, str]] = {}
    flat = campaign.space.names
    owner = {
        f: name
        for name, p in campaign.space.items()
        for f in (p.components if isinstance(p, CompositionParameter) else [name])
    }
    for i, step in enumerate(campaign.workflow.steps):
        step_inputs = inputs[step.instrument]
        mapping = {n: n for n in flat if n in step_inputs and n not in step.parameters.values()}
        for inp, param in step.parameters.items():
            where = f"workflow.steps[{i}].parameters.{inp}"
            if inp not in step_inputs:
                problems.append(
                    Problem(where, f"{step.instrument} has no input {inp!r}; inputs: {', '.join(step_inputs)}")
                )
            elif param not in flat:
                problems.append(Problem(where, f"no parameter {param!r} in the space; parameters: {', '.join(flat)}"))
            else:
                mapping[inp] = param
        for inp in sorted(set(mapping) & set(step.options)):
            problems.append(
                Problem(
                    f"workflow.steps[{i}].options.{inp}",
                    f"{inp!r} is both a fixed option and taken from parameter {mapping[inp]!r}: choose one",
                )
            )
        consumers[i] = mapping
        for inp, param in mapping.items():
            top = owner[param]
            for name in step.instruments:  # every instrument of the step's pool takes it within its limits
                if inp not in inputs[name]:
                    where = f"workflow.steps[{i}].instruments"
                    problems.append(Problem(where, f"{name} has no input {inp!r}, which {step.instrument} takes"))
                    continue
                problems.extend(_limit_problems(top, param, campaign.space.root[top], inputs[name][inp], name))
    used = {p for m in consumers.values() for p in m.values()}
    for f in flat:
        if f not in used:
            accepted = sorted({i for s in campaign.workflow.steps for i in inputs[s.instrument]})
            problems.append(
                Problem(
                    f"space.{owner[f]}",
                    f"no instrument of the workflow takes {f!r} (inputs: {', '.join(accepted)}); "
                    "map it with a step's 'parameters'",
                )
            )
    return consumers, problems


def _limit_problems(name: str, flat: str, p: object, spec: InputSpec, inst: str) -> list[Problem]:
    out: list[Problem] = []
    if isinstance(p, CompositionParameter):
        if spec.kind != "component":
            out.append(Problem(f"space.{name}", f"{inst}: {flat!r} is a setting, not a precursor component"))
        return out
    if isinstance(p, RealParameter | IntegerParameter | DiscreteParameter):
        if spec.kind not in ("real", "integer"):
            out.append(Problem(f"space.{name}", f"{inst}: input {spec.name!r} is a {spec.kind}, not a number"))
            return out
        if isinstance(p, DiscreteParameter) and spec.kind == "integer":
            fractional = [v for v in p.values if not float(v).is_integer()]
            if fractional:
                out.append(
                    Problem(f"space.{name}.values", f"{inst} takes whole numbers for {spec.name}; not {fractional}")
                )
        unit = f" {spec.unit}" if spec.unit else ""
        at_low, at_high = ("values", "values") if isinstance(p, DiscreteParameter) else ("low", "high")
        if spec.low is not None and p.low < spec.low:
            msg = f"{p.low:g} is below {inst}'s limit for {spec.name} ({spec.low:g}{unit})"
            out.append(Problem(f"space.{name}.{at_low}", msg))
        if spec.high is not None and p.high > spec.high:
            msg = f"{p.high:g} is above {inst}'s limit for {spec.name} ({spec.high:g}{unit})"
            out.append(Problem(f"space.{name}.{at_high}", msg))
        if p.unit and spec.unit and p.unit != spec.unit:
            out.append(Problem(f"space.{name}.unit", f"unit {p.unit!r} differs from {inst}'s unit {spec.unit!r}"))
    elif isinstance(p, CategoricalParameter):
        if spec.kind != "choice":
            out.append(Problem(f"space.{name}", f"{inst}: input {spec.name!r} is a {spec.kind}, not a choice"))
        else:
            bad = [c for c in p.choices if c not in spec.choices]
            if bad:
                out.append(Problem(f"space.{name}.choices", f"{inst} cannot use {bad}; it offers {list(spec.choices)}"))
    return out


def check_campaign(campaign: Campaign, data_dir: Path | None = None) -> list[Problem]:
    """Every problem of ``campaign`` beyond its schema (empty when it can run).

    ``data_dir`` (default: the campaign's) is where registered instruments are looked up.
    The instruments' drivers are built for the check (without their ophyd devices) and
    closed again.
    """
    problems = static_problems(campaign)
    try:
        drivers = build_drivers(
            campaign.workflow, campaign.simulation, campaign.seed, data_dir or campaign.data_dir, check_only=True
        )
    except LabosError as exc:
        problems.append(_build_problem(exc))
        return problems
    with drivers:
        problems.extend(lab_problems(campaign, drivers.inputs))
    return problems


def static_problems(campaign: Campaign) -> list[Problem]:
    """Problems found without building instruments: planner, options, objective metrics."""
    problems: list[Problem] = [
        Problem("constraints" if i is None else f"constraints[{i}]", msg) for i, msg in campaign.space.infeasibility()
    ]
    try:
        _, multi_objective = planner_traits(campaign.planner.name)
    except LabosError as exc:
        problems.append(Problem("planner.name", str(exc)))
    else:
        for opt, msg in option_problems(campaign.planner.name, campaign.planner.options):
            problems.append(Problem(f"planner.options.{opt}", msg))
        if not multi_objective and len(campaign.objectives) > 1:
            problems.append(
                Problem(
                    "objectives",
                    f"planner {campaign.planner.name!r} optimises a single objective, "
                    f"but {len(campaign.objectives)} are given",
                )
            )
    available: set[str] = set()
    for step in campaign.workflow.steps:
        if step.action == "measure":
            for name in step.instruments:
                available.update(metric_names(campaign.workflow.instruments[name].kind, name))
    for i, o in enumerate(campaign.objectives):
        if o.source not in available:
            problems.append(
                Problem(
                    f"objectives[{i}].metric" if o.metric else f"objectives[{i}].name",
                    f"no measurement yields metric {o.source!r}; available: {', '.join(sorted(available))}",
                )
            )
    return problems


def open_lab(
    campaign: Campaign, data_dir: Path, run_key: str | None = None, check_only: bool = False
) -> tuple[Lab | None, list[Problem]]:
    """Build the campaign's instruments; a failure becomes a problem located at the instrument.

    ``check_only``: only to check the campaign, writing nothing (see :func:`~labos.devices.lab.build_lab`).
    """
    from labos.devices.lab import build_lab

    try:
        lab = build_lab(campaign.workflow, campaign.simulation, campaign.seed, data_dir, run_key, check_only)
        return lab, []
    except LabosError as exc:
        return None, [_build_problem(exc)]


def _build_problem(exc: LabosError) -> Problem:
    """An instrument that could not be built, located at its entry (or the setting named)."""
    if isinstance(exc, InstrumentError):
        where = exc.path or f"workflow.instruments.{exc.instrument}" + (f".options.{exc.option}" if exc.option else "")
        return Problem(where, str(exc))
    return Problem("workflow.instruments", str(exc))


def lab_problems(campaign: Campaign, inputs: Inputs) -> list[Problem]:
    """Problems found against the instruments' inputs: parameters and step options."""
    _, problems = parameter_consumers(campaign, inputs)
    for i, step in enumerate(campaign.workflow.steps):
        for name in step.instruments:
            step_inputs = inputs[name]
            for key, value in step.options.items():
                spec = step_inputs.get(key)
                if spec is None:
                    problems.append(
                        Problem(
                            f"workflow.steps[{i}].options.{key}",
                            f"{name} has no input {key!r}; inputs: {', '.join(step_inputs)}",
                        )
                    )
                    continue
                # a slot of a pooled instrument's station: each instrument of the pool's slot must do
                values = campaign.workflow.slot_choices(value) if step.action == "transfer" else [value]
                for v in values:
                    if (msg := spec.problem(v)) is not None:
                        problems.append(Problem(f"workflow.steps[{i}].options.{key}", f"{name}: {msg}"))
    return problems
