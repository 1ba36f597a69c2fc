"""An ophyd device for a liquid-handling synthesizer (dispense, heat, react)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, Status, StatusBase

from labos.core.errors import OutOfBoundsError
from labos.core.space import ParamValue
from labos.devices.drivers import InputSpec, SynthesizerDriver


class Synthesizer(Device):
    """A synthesizer driven through a :class:`~labos.devices.drivers.SynthesizerDriver`.

    ``set({"sample_id": ..., "recipe": {...}})`` checks the recipe against the
    instrument's limits *before* anything moves, then makes the sample; the returned
    status completes when the sample is ready. Readings: the sample id, the recipe as
    executed (JSON) and the instrument time taken.
    """

    sample_id = Cpt(Signal, value="", kind="hinted")
    recipe = Cpt(Signal, value="{}", kind="normal")
    duration = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "s"})
    state = Cpt(Signal, value="idle", kind="config")

    def __init__(self, prefix: str = "", *, driver: SynthesizerDriver, name: str, **kwargs: Any) -> None:
        super().__init__(prefix, name=name, **kwargs)
        self.driver = driver
        self.inputs: dict[str, InputSpec] = {i.name: i for i in driver.inputs()}

    def check_recipe(self, recipe: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
        """Validate ``recipe`` against the instrument's inputs and limits.

        Returns the complete recipe (defaults filled in).

        Raises
        ------
        OutOfBoundsError
            Naming the device, the input, the limit and the value.
        """
        unknown = sorted(set(recipe) - set(self.inputs))
        if unknown:
            raise OutOfBoundsError(
                f"{self.name}: unknown input(s) {', '.join(unknown)}; accepted: {', '.join(self.inputs)}"
            )
        full: dict[str, ParamValue] = {}
        for name, spec in self.inputs.items():
            if name in recipe:
                value = recipe[name]
            elif spec.kind == "component":
                value = 0.0
            elif spec.default is not None:
                value = spec.default
            else:
                raise OutOfBoundsError(f"{self.name}: input {name!r} is required and has no default")
            problem = spec.problem(value)
            if problem is not None:
                raise OutOfBoundsError(f"{self.name}: {name} = {problem}")
            full[name] = value
        components = [n for n, s in self.inputs.items() if s.kind == "component"]
        if components and sum(float(full[n]) for n in components) <= 0:
            raise OutOfBoundsError(f"{self.name}: the recipe dispenses nothing (every component is 0)")
        return full

    def set(self, request: Mapping[str, Any]) -> StatusBase:
        """Make a sample: ``request = {"sample_id": str, "recipe": {input: value}}``."""
        sample_id = str(request["sample_id"])
        recipe = self.check_recipe(request["recipe"])  # raises before anything moves
        status = DeviceStatus(self)
        self.state.put("busy")

        def work() -> None:
            try:
                report = self.driver.synthesize(sample_id, recipe)
            except Exception as exc:  # noqa: BLE001 - every failure is reported through the status
                self.state.put("fault")
                status.set_exception(exc)
                return
            self.sample_id.put(report.sample_id)
            self.recipe.put(json.dumps(report.recipe, sort_keys=True))
            self.duration.put(float(report.duration_s))
            self.state.put("idle")
            status.set_finished()

        threading.Thread(target=work, name=f"{self.name}-synthesize", daemon=True).start()
        return status

    def trigger(self) -> StatusBase:
        """Readings are updated by :meth:`set`; triggering only reports them."""
        status = Status(obj=self)
        status.set_finished()
        return status
