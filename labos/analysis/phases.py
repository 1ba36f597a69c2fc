"""Reference powder-diffraction cards: d-spacings and relative intensities of known phases.

Values are rounded from published powder-diffraction data (ICDD-style cards; BaTiO3
cubic/pseudo-cubic, witherite BaCO3, rutile TiO2, Ba2TiO4 and BaTi2O5). They serve
phase quantification of simulated and real patterns of the Ba–Ti–O system; add cards
with :func:`register_phase`. Intensities are per unit phase fraction on a common
scale, so fitted scales compare directly between phases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

HC_KEV_ANGSTROM = 12.39842
CU_KALPHA_ANGSTROM = 1.5406
"""The wavelength the cards' intensities were measured at."""


def lorentz_polarisation(theta: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(1 + cos^2 2theta) / (sin^2 theta cos theta)`` for an unpolarised beam (Bragg angle in radians)."""
    result: NDArray[np.float64] = (1.0 + np.cos(2.0 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    return result


@dataclass(frozen=True)
class PhaseCard:
    """One phase: its reflections as (d-spacing in angstrom, relative intensity)."""

    name: str
    formula: str
    reflections: tuple[tuple[float, float], ...]

    def two_theta(self, energy_kev: float, d_scale: float = 1.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Peak positions (degrees 2-theta) by Bragg's law at ``energy_kev``, and intensities there.

        The cards' intensities were measured with Cu K-alpha; at another wavelength each
        reflection's Lorentz-polarisation factor changes, so the intensities are scaled
        by ``LP(theta at energy) / LP(theta at Cu K-alpha)``. Reflections beyond the
        Ewald limit (``lambda / 2d > 1``) are dropped. ``d_scale`` stretches every
        d-spacing (a sample's cell differs from the card's by strain, composition or
        temperature).
        """
        lam = HC_KEV_ANGSTROM / energy_kev
        d = np.array([r[0] for r in self.reflections]) * d_scale
        i = np.array([r[1] for r in self.reflections])
        s = lam / (2.0 * d)
        ok = s < 1.0
        theta = np.arcsin(s[ok])
        theta_cu = np.arcsin(np.clip(CU_KALPHA_ANGSTROM / (2.0 * d[ok]), 0.0, 1.0 - 1e-9))
        return np.degrees(2.0 * theta), i[ok] * lorentz_polarisation(theta) / lorentz_polarisation(theta_cu)


PHASES: dict[str, PhaseCard] = {}


def register_phase(card: PhaseCard) -> None:
    """Add a card to the library (names must be identifiers: they become metric names)."""
    if not card.name.isidentifier():
        raise ValueError(f"phase name {card.name!r} must be an identifier")
    PHASES[card.name] = card


for _card in (
    PhaseCard(
        "BaTiO3",
        "BaTiO3",
        (
            (4.031, 12),
            (2.838, 100),
            (2.315, 30),
            (2.006, 45),
            (1.794, 8),
            (1.637, 35),
            (1.419, 20),
            (1.268, 15),
        ),
    ),
    PhaseCard(
        "BaCO3",
        "BaCO3 (witherite)",
        (
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
    ),
    PhaseCard(
        "TiO2_rutile",
        "TiO2 (rutile)",
        (
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
    ),
    PhaseCard(
        "Ba2TiO4",
        "Ba2TiO4",
        (
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
    ),
    PhaseCard(
        "BaTi2O5",
        "BaTi2O5",
        (
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
    ),
):
    register_phase(_card)


def gaussian_pattern(
    two_theta: NDArray[np.float64],
    card: PhaseCard,
    energy_kev: float,
    fwhm_deg: float,
    shift_deg: float = 0.0,
    d_scale: float = 1.0,
) -> NDArray[np.float64]:
    """A card's pattern on ``two_theta`` with Gaussian peaks of ``fwhm_deg`` (unit scale)."""
    pos, inten = card.two_theta(energy_kev, d_scale)
    sigma = fwhm_deg / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    out = np.zeros_like(two_theta)
    for p, i in zip(pos + shift_deg, inten, strict=True):
        out += (i / 100.0) * np.exp(-0.5 * ((two_theta - p) / sigma) ** 2)
    return out


def scherrer_fwhm_deg(crystallite_nm: float, two_theta_deg: float, energy_kev: float, k: float = 0.9) -> float:
    """Peak broadening (degrees 2-theta) from crystallite size: ``K lambda / (L cos theta)``."""
    lam_nm = HC_KEV_ANGSTROM / energy_kev / 10.0
    theta = math.radians(two_theta_deg / 2.0)
    return math.degrees(k * lam_nm / (crystallite_nm * math.cos(theta)))
