"""The ophyd devices of a campaign's workflow, each wrapping the driver built for it (:mod:`labos.devices.build`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ophyd import Device

from labos.core.campaign import SimulationSpec, WorkflowSpec
from labos.devices.beamline import XRDBeamline
from labos.devices.build import PROTOCOLS, build_drivers
from labos.devices.drivers import DriverContext, InputSpec
from labos.devices.furnace import Furnace
from labos.devices.robot import RobotArm
from labos.devices.spectrometer import UVVisSpectrometer
from labos.devices.synthesizer import Synthesizer

DEVICE_CLASSES: dict[str, tuple[type[Device], type]] = {
    "synthesizer": (Synthesizer, PROTOCOLS["synthesizer"]),
    "uvvis": (UVVisSpectrometer, PROTOCOLS["uvvis"]),
    "robot": (RobotArm, PROTOCOLS["robot"]),
    "furnace": (Furnace, PROTOCOLS["furnace"]),
    "xrd": (XRDBeamline, PROTOCOLS["xrd"]),
}
"""Each instrument kind's ophyd device class and the driver protocol it speaks."""


@dataclass
class Lab:
    """The ophyd devices of one campaign, by instrument name."""

    devices: dict[str, Device]
    context: DriverContext
    _closed: bool = field(default=False, repr=False)

    def __getitem__(self, name: str) -> Device:
        return self.devices[name]

    @property
    def inputs(self) -> dict[str, dict[str, InputSpec]]:
        """Each instrument's inputs by name."""
        return {name: dev.inputs for name, dev in self.devices.items()}

    def close(self) -> None:
        """Close every driver (idempotent); problems are warned about, not raised."""
        if self._closed:
            return
        self._closed = True
        for name, dev in self.devices.items():
            try:
                if dev.busy:  # an action still running (the campaign was interrupted): safe state first
                    dev.stop(success=False)
                dev.driver.close()
                dev.destroy()  # the device's worker thread
            except Exception as exc:  # noqa: BLE001 - closing must not hide the campaign's own outcome
                warnings.warn(f"closing instrument {name!r} failed: {exc}", stacklevel=2)
        self.context.close()  # resources shared by the drivers, e.g. a simulated world

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_lab(
    workflow: WorkflowSpec,
    simulation: SimulationSpec | Mapping[str, Any],
    seed: int,
    data_dir: Path | None = None,
    run_key: str | None = None,
    check_only: bool = False,
) -> Lab:
    """Build every instrument of ``workflow`` (see :func:`~labos.devices.build.build_drivers`) as an ophyd device.

    On failure, what was built is closed.
    """
    drivers = build_drivers(workflow, simulation, seed, data_dir, run_key, check_only)
    lab = Lab(devices={}, context=drivers.context)
    try:
        for name, spec in workflow.instruments.items():
            device_cls, _ = DEVICE_CLASSES[spec.kind]
            lab.devices[name] = device_cls(driver=drivers.drivers[name], name=name, timeout_s=spec.timeout_s)
    except BaseException:
        for name, driver in drivers.drivers.items():
            if name not in lab.devices:
                driver.close()
        lab.close()
        raise
    return lab
