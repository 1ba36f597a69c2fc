"""The simulated world's powder diffraction: what each phase's crystals diffract, and how peaks look.

This is the simulator's own ground truth, kept apart from :mod:`labos.analysis` (which
has its own reference library and peak model) so that the analysis is tested against
a generator it was not built from. Reflections are d-spacings (angstrom) and relative
intensities per unit phase fraction, from published powder-diffraction data of the
Ba–Ti–O system (BaTiO3, witherite BaCO3, rutile TiO2, Ba2TiO4, BaTi2O5). Peaks are
pseudo-Voigt (a Lorentzian share ``ETA``) with a width that grows with angle: the
crystallite-size (Scherrer) term as ``1 / cos(theta)`` and the instrument's
resolution as ``tan(theta)`` (Caglioti), neither of which the analysis assumes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

HC_KEV_ANGSTROM = 12.398419843320026
ETA = 0.3
"""Lorentzian fraction of the pseudo-Voigt peaks."""

REFLECTIONS: dict[str, tuple[tuple[float, float], ...]] = {
    "BaTiO3": ((4.031, 12), (2.838, 100), (2.315, 30), (2.006, 45), (1.794, 8), (1.637, 35), (1.419, 20), (1.268, 15)),
    "BaCO3": (
        (3.720, 100),
        (3.665, 53),
        (3.219, 7),
        (2.628, 24),
        (2.590, 9),
        (2.150, 30),
        (2.104, 26),
        (2.019, 24),
        (1.940, 16),
        (1.823, 5),
    ),
    "TiO2_rutile": (
        (3.247, 100),
        (2.487, 50),
        (2.297, 8),
        (2.188, 25),
        (2.054, 10),
        (1.687, 60),
        (1.624, 20),
        (1.480, 10),
        (1.453, 10),
        (1.360, 20),
    ),
    "Ba2TiO4": (
        (4.050, 15),
        (3.160, 35),
        (3.050, 60),
        (2.990, 100),
        (2.930, 85),
        (2.290, 20),
        (2.090, 30),
        (2.050, 25),
        (1.980, 20),
        (1.770, 15),
    ),
    "BaTi2O5": (
        (5.770, 20),
        (3.520, 35),
        (3.120, 50),
        (2.960, 100),
        (2.870, 60),
        (2.630, 25),
        (2.270, 20),
        (1.950, 30),
        (1.780, 20),
    ),
}


def pattern(
    two_theta: NDArray[np.float64],
    fractions: dict[str, float],
    energy_kev: float,
    crystallite_nm: float,
    resolution_deg: float,
    shift_deg: float,
) -> NDArray[np.float64]:
    """The noise-free diffracted intensity of a phase mixture on ``two_theta`` (unit flux)."""
    lam = HC_KEV_ANGSTROM / energy_kev
    out = np.zeros_like(two_theta)
    for phase, fraction in fractions.items():
        for d, intensity in REFLECTIONS[phase]:
            s = lam / (2.0 * d)
            if s >= 1.0:
                continue
            theta = math.asin(s)
            size = math.degrees(0.9 * lam / 10.0 / (crystallite_nm * math.cos(theta)))
            instrument = resolution_deg * (0.6 + 0.4 * math.tan(theta) / math.tan(math.radians(10.0)))
            fwhm = math.hypot(size, instrument)
            out += fraction * (intensity / 100.0) * _pseudo_voigt(two_theta, math.degrees(2 * theta) + shift_deg, fwhm)
    return out


def _pseudo_voigt(x: NDArray[np.float64], centre: float, fwhm: float) -> NDArray[np.float64]:
    """Unit-height pseudo-Voigt peak."""
    z = (x - centre) / (fwhm / 2.0)
    return ETA / (1.0 + z**2) + (1.0 - ETA) * np.exp(-math.log(2.0) * z**2)
