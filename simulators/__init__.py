"""Simulated instruments for labos: physics, realistic durations, noise and faults.

Runtime code never imports this package: it is reached through the ``labos.drivers``
entry point ``sim`` (:func:`create_driver`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labos.core.errors import ConfigurationError, OptionError
from labos.devices.drivers import DriverContext
from simulators.beamline import SimBeamline
from simulators.furnace import SimFurnace
from simulators.robot import SimRobotArm
from simulators.spectrometer import SimSpectrometer
from simulators.synthesizer import SimSynthesizer
from simulators.world import SimWorld

_WORLD_KEY = "simulators.world"
_DRIVERS: dict[str, type] = {
    "synthesizer": SimSynthesizer,
    "uvvis": SimSpectrometer,
    "robot": SimRobotArm,
    "furnace": SimFurnace,
    "xrd": SimBeamline,
}


def create_driver(kind: str, name: str, options: Mapping[str, Any], context: DriverContext) -> Any:
    """Entry point ``labos.drivers: sim``: a simulated driver of ``kind`` in the lab's shared world."""
    world = context.resources.get(_WORLD_KEY)
    if world is None:
        try:
            world = SimWorld.from_simulation(context.simulation, context.seed, context.run_key, context.check_only)
        except KeyError as exc:
            raise ConfigurationError(f"simulation: {exc.args[0]}") from None
        context.resources[_WORLD_KEY] = world
    try:
        cls = _DRIVERS[kind]
    except KeyError:
        raise ConfigurationError(f"no simulated driver for kind {kind!r} (have: {', '.join(_DRIVERS)})") from None
    if world.book.path is not None:  # a world shared with other processes: its instruments are shared too
        context.identities[name] = f"sim:{world.book.path.resolve()}#{name}"
    try:
        return cls(name, world, options)
    except OptionError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"instrument {name!r}: {exc}") from None


__all__ = ["SimBeamline", "SimFurnace", "SimRobotArm", "SimSpectrometer", "SimSynthesizer", "SimWorld", "create_driver"]
