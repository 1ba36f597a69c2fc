"""Drivers by name: the ``labos.drivers`` entry points, each kind's protocol, and building a workflow's drivers.

Nothing here imports ophyd or bluesky: ``labos validate`` checks a campaign against the
drivers' inputs without paying for them. :func:`labos.devices.lab.build_lab` wraps the
drivers built here in ophyd devices.

Drivers are found by name in the entry-point group ``labos.drivers``; the simulated lab
registers itself there as ``sim``. Runtime code never imports ``simulators`` directly.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from labos.core.campaign import InstrumentSpec, SimulationSpec, WorkflowSpec
from labos.core.errors import ConfigurationError, LabosError, RegistryError
from labos.devices.drivers import (
    BeamlineDriver,
    DriverContext,
    DriverFactory,
    FurnaceDriver,
    InputSpec,
    RobotDriver,
    SpectrometerDriver,
    SynthesizerDriver,
)

DRIVER_GROUP = "labos.drivers"

PROTOCOLS: dict[str, type] = {
    "synthesizer": SynthesizerDriver,
    "uvvis": SpectrometerDriver,
    "robot": RobotDriver,
    "furnace": FurnaceDriver,
    "xrd": BeamlineDriver,
}
"""The driver protocol each instrument kind must implement."""


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


def build_driver(name: str, spec: InstrumentSpec, context: DriverContext) -> Any:
    """Create the driver for instrument ``name``, checking it speaks its kind's protocol."""
    protocol = PROTOCOLS[spec.kind]
    factory = get_driver_factory(spec.driver)
    driver = factory(spec.kind, name, dict(spec.options), context)
    if not isinstance(driver, protocol):
        raise ConfigurationError(
            f"instrument {name!r}: driver {spec.driver!r} returned {type(driver).__name__}, "
            f"which does not implement {protocol.__name__}"
        )
    return driver


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


@dataclass
class Drivers:
    """The drivers of one workflow, by instrument name, and the context they share."""

    drivers: dict[str, Any]
    context: DriverContext
    _closed: bool = field(default=False, repr=False)

    @property
    def inputs(self) -> dict[str, dict[str, InputSpec]]:
        """Each instrument's inputs by name."""
        return {name: {i.name: i for i in d.inputs()} for name, d in self.drivers.items()}

    def close(self) -> None:
        """Close every driver and the shared context (idempotent); problems are warned about, not raised."""
        if self._closed:
            return
        self._closed = True
        for name, driver in self.drivers.items():
            try:
                driver.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the caller's own outcome
                warnings.warn(f"closing instrument {name!r} failed: {exc}", stacklevel=2)
        self.context.close()

    def __enter__(self) -> Drivers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_drivers(
    workflow: WorkflowSpec,
    simulation: SimulationSpec | Mapping[str, Any],
    seed: int,
    data_dir: Path | None = None,
    run_key: str | None = None,
    check_only: bool = False,
) -> Drivers:
    """Build the driver of every instrument of ``workflow``; on failure, close what was built.

    ``check_only`` builds them only to check a campaign against them: the drivers then
    create and write nothing (see :attr:`DriverContext.check_only`).

    Raises
    ------
    InstrumentError
        Naming the instrument that could not be built (and its bad option, when known).
    """
    sim = simulation.model_dump() if isinstance(simulation, SimulationSpec) else dict(simulation)
    context = DriverContext(seed=seed, simulation=sim, data_dir=data_dir, run_key=run_key, check_only=check_only)
    built = Drivers(drivers={}, context=context)
    try:
        for name, spec in workflow.instruments.items():
            try:
                built.drivers[name] = build_driver(name, spec, context)
            except LabosError as exc:
                raise InstrumentError(name, str(exc), getattr(exc, "option", None), getattr(exc, "path", None)) from exc
    except BaseException:
        built.close()
        raise
    return built
