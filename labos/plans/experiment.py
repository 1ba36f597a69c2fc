"""The Bluesky plan of one experiment: every workflow step of one sample, as one run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import MsgGenerator
from ophyd import Device

from labos.core.campaign import StepSpec
from labos.core.space import ParamValue
from labos.devices.beamline import XRDBeamline
from labos.devices.furnace import Furnace
from labos.devices.robot import RobotArm
from labos.devices.spectrometer import UVVisSpectrometer
from labos.devices.synthesizer import Synthesizer


@dataclass(frozen=True)
class PlannedStep:
    """A workflow step with everything it needs resolved: the device and its inputs."""

    action: str
    instrument: str
    inputs: dict[str, ParamValue] = field(default_factory=dict)


def resolve_steps(
    steps: Sequence[StepSpec], params: Mapping[str, ParamValue], consumers: Mapping[int, Mapping[str, str]]
) -> list[PlannedStep]:
    """Combine each step's fixed options with the campaign parameters it consumes.

    ``consumers[i]`` maps the inputs of step ``i``'s instrument to parameter names.
    """
    out = []
    for i, s in enumerate(steps):
        inputs: dict[str, ParamValue] = dict(s.options)
        for inp, param in consumers.get(i, {}).items():
            inputs[inp] = params[param]
        out.append(PlannedStep(s.action, s.instrument, inputs))
    return out


def synthesize(dev: Synthesizer, step: PlannedStep, sample_id: str) -> MsgGenerator[None]:
    """Make the sample from the step's recipe."""
    yield from bps.abs_set(dev, {"sample_id": sample_id, "recipe": step.inputs}, wait=True)


def transfer(dev: RobotArm, step: PlannedStep, sample_id: str) -> MsgGenerator[None]:
    """Carry the sample from one slot to another."""
    request = {"sample_id": sample_id, "from": step.inputs["from"], "to": step.inputs["to"]}
    yield from bps.abs_set(dev, request, wait=True)


def anneal(dev: Furnace, step: PlannedStep, sample_id: str) -> MsgGenerator[None]:
    """Run the furnace program on the sample."""
    yield from bps.abs_set(dev, {"sample_id": sample_id, "program": step.inputs}, wait=True)


def measure_uvvis(dev: UVVisSpectrometer, step: PlannedStep, sample_id: str) -> MsgGenerator[None]:
    """Load the sample, set the integration time and the mode (measured by the caller's trigger)."""
    if "integration_time" in step.inputs:
        t = float(step.inputs["integration_time"])
        dev.check_integration_time(t)
        yield from bps.mv(dev.integration_time, t)
    if "mode" in step.inputs:
        dev.check_inputs({"mode": step.inputs["mode"]}, fill_defaults=False)
        yield from bps.mv(dev.mode, str(step.inputs["mode"]))
    yield from bps.abs_set(dev, sample_id, wait=True)


def measure_xrd(dev: XRDBeamline, step: PlannedStep, sample_id: str) -> MsgGenerator[None]:
    """Set energy, slits and exposure, mount the sample and open the shutter."""
    dev.check_inputs(step.inputs, fill_defaults=False)  # every limit before anything moves
    for axis in ("energy", "slit_h", "slit_v"):
        if axis in step.inputs:
            yield from bps.mv(getattr(dev, axis), float(step.inputs[axis]))
    if "exposure" in step.inputs:
        yield from bps.mv(dev.exposure, float(step.inputs["exposure"]))
    yield from bps.abs_set(dev, sample_id, wait=True)
    yield from bps.mv(dev.shutter, "open")


Stub = Callable[[Any, PlannedStep, str], MsgGenerator[None]]

STUBS: dict[tuple[str, type[Device]], Stub] = {
    ("synthesize", Synthesizer): synthesize,
    ("transfer", RobotArm): transfer,
    ("anneal", Furnace): anneal,
    ("measure", UVVisSpectrometer): measure_uvvis,
    ("measure", XRDBeamline): measure_xrd,
}


def _stub(action: str, dev: Device) -> Stub:
    for (act, cls), stub in STUBS.items():
        if act == action and isinstance(dev, cls):
            return stub
    raise ValueError(f"no plan for {action!r} on a {type(dev).__name__}")


class StepHooks(Protocol):
    """What runs around each step of an experiment that shares its instruments (a lane's reservations).

    ``before`` is called before step ``i`` starts and returns the step as this
    experiment runs it (on the instrument it was granted, with slots of that
    instrument); it may wait until the instruments are free. ``after`` is called once
    step ``i`` has ended, failed or not, to give back what the experiment no longer needs.
    Both are plain calls, not plans: they must not touch the devices.
    """

    def before(self, i: int, step: PlannedStep) -> PlannedStep:
        """Step ``i`` as this experiment runs it, once its instruments are held."""
        ...

    def after(self, i: int) -> None:
        """Step ``i`` has ended."""
        ...


def experiment_plan(
    devices: Mapping[str, Device],
    steps: Sequence[PlannedStep],
    sample_id: str,
    md: Mapping[str, Any],
    hooks: StepHooks | None = None,
    pools: Sequence[Sequence[str]] | None = None,
) -> MsgGenerator[str]:
    """One experiment as one Bluesky run.

    Each step is recorded in an event stream named after the instrument that did it. A
    failing step still closes the run, with ``exit_status="fail"`` and the reason in the
    stop document; a beamline shutter opened by the plan is closed again whatever
    happens. A checkpoint precedes every step: ``RE.pause()`` stops the instruments (the
    RunEngine calls their ``stop()``) and ``RE.resume()`` runs the interrupted step again
    from its start; ``RE.request_pause(defer=True)`` lets the running step finish first.

    ``hooks`` (a lane's reservations) choose each step's instrument among ``pools[i]``
    (the step's interchangeable instruments) and wait for it before the step.
    """
    pools = [list(p) for p in pools] if pools is not None else [[s.instrument] for s in steps]
    detectors = sorted({name for pool in pools for name in pool})
    start_md = {
        **md,
        "detectors": detectors,
        "plan_name": "labos_experiment",
        "plan_args": {
            "sample_id": sample_id,
            "steps": [
                {"action": s.action, "instrument": s.instrument, "inputs": dict(s.inputs)}
                | ({"instruments": list(pool)} if len(pool) > 1 else {})
                for s, pool in zip(steps, pools, strict=True)
            ],
        },
        "hints": {"dimensions": [[["time"], name] for name in dict.fromkeys(n for pool in pools for n in pool)]},
        "sample_id": sample_id,
    }
    opened: list[XRDBeamline] = []

    def close_shutters() -> MsgGenerator[None]:
        while opened:
            yield from bps.mv(opened.pop().shutter, "closed")

    @bpp.run_decorator(md=start_md)  # type: ignore[untyped-decorator]
    def inner() -> MsgGenerator[str]:
        for i, planned in enumerate(steps):
            yield from bps.checkpoint()
            step = hooks.before(i, planned) if hooks is not None else planned
            dev = devices[step.instrument]
            stub = _stub(step.action, dev)
            yield from stub(dev, step, sample_id)
            if isinstance(dev, XRDBeamline):
                opened.append(dev)
            yield from bps.trigger_and_read([dev], name=step.instrument)
            yield from close_shutters()
            if hooks is not None:  # a failed step keeps what it holds until its sample is parked
                hooks.after(i)
        return sample_id

    uid: str = yield from bpp.finalize_wrapper(inner(), close_shutters())
    return uid
