"""Ophyd devices for lab instruments, the driver protocols they speak, and the lab builder."""

from labos.devices.drivers import (
    DriverContext,
    InputSpec,
    SpectrometerDriver,
    Spectrum,
    SynthesisReport,
    SynthesizerDriver,
)
from labos.devices.lab import Lab, build_lab, driver_names
from labos.devices.spectrometer import UVVisSpectrometer
from labos.devices.synthesizer import Synthesizer

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
    "build_lab",
    "driver_names",
]
