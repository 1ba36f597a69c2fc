"""Ophyd devices for lab instruments, the driver protocols they speak, and the lab builder.

The ophyd-backed names (:class:`Lab`, :func:`build_lab`, the device classes) are imported
on first use: importing ophyd takes about a second, which ``labos validate`` (drivers
only, :mod:`labos.devices.build`) does not pay.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from labos.devices.build import build_drivers, driver_names
from labos.devices.drivers import (
    DriverContext,
    InputSpec,
    SpectrometerDriver,
    Spectrum,
    SynthesisReport,
    SynthesizerDriver,
)

if TYPE_CHECKING:
    from labos.devices.lab import Lab, build_lab
    from labos.devices.spectrometer import UVVisSpectrometer
    from labos.devices.synthesizer import Synthesizer

_LAZY = {
    "Lab": "labos.devices.lab",
    "build_lab": "labos.devices.lab",
    "UVVisSpectrometer": "labos.devices.spectrometer",
    "Synthesizer": "labos.devices.synthesizer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DriverContext",
    "InputSpec",
    "Lab",
    "SpectrometerDriver",
    "Spectrum",
    "SynthesisReport",
    "Synthesizer",
    "SynthesizerDriver",
    "UVVisSpectrometer",
    "build_drivers",
    "build_lab",
    "driver_names",
]
