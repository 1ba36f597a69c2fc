"""An ophyd device for a synthesizer: a liquid handler or a powder doser with a mill."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ophyd import Component as Cpt
from ophyd import Signal
from ophyd.status import StatusBase

from labos.core.errors import OutOfBoundsError
from labos.core.space import ParamValue
from labos.devices.base import DriverDevice
from labos.devices.drivers import SynthesizerDriver


class Synthesizer(DriverDevice):
    """A synthesizer driven through a :class:`~labos.devices.drivers.SynthesizerDriver`.

    ``set({"sample_id": ..., "recipe": {...}})`` checks the recipe against the
    instrument's limits *before* anything moves, then makes the sample; the returned
    status completes when the sample is ready. Readings: the sample id, the recipe as
    executed (JSON) and the instrument time taken.
    """

    sample_id = Cpt(Signal, value="", kind="hinted")
    recipe = Cpt(Signal, value="{}", kind="normal")
    duration = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "s"})

    driver: SynthesizerDriver

    def check_recipe(self, recipe: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
        """Validate ``recipe`` against the instrument's inputs and limits; returns it complete.

        Raises
        ------
        OutOfBoundsError
            Naming the device, the input, the limit and the value.
        """
        full = self.check_inputs(recipe)
        components = [n for n, s in self.inputs.items() if s.kind == "component"]
        if components and sum(float(full[n]) for n in components) <= 0:
            raise OutOfBoundsError(f"{self.name}: the recipe dispenses nothing (every component is 0)")
        return full

    def set(self, request: Mapping[str, Any]) -> StatusBase:
        """Make a sample: ``request = {"sample_id": str, "recipe": {input: value}}``."""
        sample_id = str(request["sample_id"])
        recipe = self.check_recipe(request["recipe"])  # raises before anything moves

        def work() -> None:
            report = self.driver.synthesize(sample_id, recipe)
            self.sample_id.put(report.sample_id)
            self.recipe.put(json.dumps(report.recipe, sort_keys=True))
            self.duration.put(float(report.duration_s))

        return self.run_in_thread("synthesize", work)
