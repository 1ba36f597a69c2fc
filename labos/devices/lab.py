"""Build the instruments a campaign's workflow names, through registered drivers.

Drivers are found by name in the entry-point group ``labos.drivers``; the simulated
lab registers itself there as ``sim``. Runtime code never imports ``simulators``
directly.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ophyd import Device

from labos.core.campaign import InstrumentSpec, SimulationSpec, WorkflowSpec
from labos.core.errors import ConfigurationError, LabosError, RegistryError
from labos.devices.beamline import XRDBeamline
from labos.devices.drivers import (
    BeamlineDriver,
    DriverContext,
    DriverFactory,
    FurnaceDriver,
    RobotDriver,
    SpectrometerDriver,
    SynthesizerDriver,
)
from labos.devices.furnace import Furnace
from labos.devices.robot import RobotArm
from labos.devices.spectrometer import UVVisSpectrometer
from labos.devices.synthesizer import Synthesizer

DRIVER_GROUP = "labos.drivers"

DEVICE_CLASSES: dict[str, tuple[type[Device], type]] = {
    "synthesizer": (Synthesizer, SynthesizerDriver),
    "uvvis": (UVVisSpectrometer, SpectrometerDriver),
    "robot": (RobotArm, RobotDriver),
    "furnace": (Furnace, FurnaceDriver),
    "xrd": (XRDBeamline, BeamlineDriver),
}


@cache
def _driver_entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=DRIVER_GROUP)}


def driver_names() -> list[str]:
    """Registered driver names."""
    return sorted(_driver_entry_points())


def get_driver_factory(name: str) -> DriverFactory:
    """The factory registered as ``name``; the error lists the known names."""
    eps = _driver_entry_points()
    if name not in eps:
        raise RegistryError(f"unknown driver {name!r}; known drivers: {', '.join(sorted(eps)) or 'none'}")
    try:
        factory: DriverFactory = eps[name].load()
    except Exception as exc:
        raise ConfigurationError(f"driver {name!r} ({eps[name].value}) failed to load: {exc}") from exc
    return factory


@dataclass
class Lab:
    """The ophyd devices of one campaign, by instrument name."""

    devices: dict[str, Device]
    context: DriverContext
    _closed: bool = field(default=False, repr=False)

    def __getitem__(self, name: str) -> Device:
        return self.devices[name]

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


def build_driver(name: str, spec: InstrumentSpec, context: DriverContext) -> Any:
    """Create the driver for instrument ``name``, checking it speaks its kind's protocol."""
    _, protocol = DEVICE_CLASSES[spec.kind]
    factory = get_driver_factory(spec.driver)
    driver = factory(spec.kind, name, dict(spec.options), context)
    if not isinstance(driver, protocol):
        raise ConfigurationError(
            f"instrument {name!r}: driver {spec.driver!r} returned {type(driver).__name__}, "
            f"which does not implement {protocol.__name__}"
        )
    return driver


def build_device(name: str, spec: InstrumentSpec, context: DriverContext) -> Device:
    """Create the driver for ``spec`` and wrap it in the matching ophyd device."""
    device_cls, _ = DEVICE_CLASSES[spec.kind]
    return device_cls(driver=build_driver(name, spec, context), name=name, timeout_s=spec.timeout_s)


def build_lab(
    workflow: WorkflowSpec,
    simulation: SimulationSpec | Mapping[str, Any],
    seed: int,
    data_dir: Path | None = None,
    run_key: str | None = None,
    check_only: bool = False,
) -> Lab:
    """Build every instrument of ``workflow``; on failure, close what was built.

    ``check_only`` builds the instruments only to check a campaign against them: the
    drivers then create and write nothing (see :attr:`DriverContext.check_only`).
    """
    sim = simulation.model_dump() if isinstance(simulation, SimulationSpec) else dict(simulation)
    context = DriverContext(seed=seed, simulation=sim, data_dir=data_dir, run_key=run_key, check_only=check_only)
    lab = Lab(devices={}, context=context)
    try:
        for name, spec in workflow.instruments.items():
            try:
                lab.devices[name] = build_device(name, spec, context)
            except LabosError as exc:
                raise InstrumentError(name, str(exc), getattr(exc, "option", None), getattr(exc, "path", None)) from exc
    except BaseException:
        lab.close()
        raise
    return lab


class InstrumentError(ConfigurationError):
    """An instrument of a workflow could not be built.

    ``instrument`` names it; ``option`` the bad option and ``path`` the bad setting
    elsewhere in the campaign (``simulation.world``), when known.
    """

    def __init__(self, instrument: str, message: str, option: str | None = None, path: str | None = None) -> None:
        self.instrument = instrument
        self.option = option
        self.path = path
        super().__init__(message)
