"""The Bluesky plan of one experiment: synthesise, then measure, as one run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import MsgGenerator
from ophyd import Device

from labos.core.campaign import StepSpec
from labos.core.space import ParamValue


@dataclass(frozen=True)
class PlannedStep:
    """A workflow step with everything it needs resolved: the device and its inputs."""

    action: str
    instrument: str
    inputs: dict[str, ParamValue] = field(default_factory=dict)


def resolve_steps(
    steps: Sequence[StepSpec], params: Mapping[str, ParamValue], consumers: Mapping[str, list[str]]
) -> list[PlannedStep]:
    """Combine each step's fixed options with the campaign parameters it consumes.

    ``consumers[instrument]`` lists the parameter names that instrument takes.
    """
    out = []
    for s in steps:
        inputs: dict[str, ParamValue] = dict(s.options)
        for name in consumers.get(s.instrument, []):
            inputs[name] = params[name]
        out.append(PlannedStep(s.action, s.instrument, inputs))
    return out


def experiment_plan(
    devices: Mapping[str, Device], steps: Sequence[PlannedStep], sample_id: str, md: Mapping[str, Any]
) -> MsgGenerator[str]:
    """One experiment as one Bluesky run.

    Each step is recorded in an event stream named after its instrument. A failing
    step still closes the run, with ``exit_status="fail"`` and the reason in the stop
    document.
    """
    detectors = sorted({s.instrument for s in steps})

    start_md = {**md, "detectors": detectors, "plan_name": "labos_experiment", "sample_id": sample_id}

    @bpp.run_decorator(md=start_md)  # type: ignore[untyped-decorator]
    def inner() -> MsgGenerator[str]:
        for step in steps:
            dev = devices[step.instrument]
            if step.action == "synthesize":
                yield from bps.abs_set(dev, {"sample_id": sample_id, "recipe": step.inputs}, wait=True)
            elif step.action == "measure":
                if "integration_time" in step.inputs:
                    t = float(step.inputs["integration_time"])
                    dev.check_integration_time(t)
                    yield from bps.mv(dev.integration_time, t)
                yield from bps.abs_set(dev, sample_id, wait=True)
            else:  # pragma: no cover - excluded by the campaign model
                raise ValueError(f"unknown action {step.action!r}")
            yield from bps.trigger_and_read([dev], name=step.instrument)
        return sample_id

    uid: str = yield from inner()
    return uid
