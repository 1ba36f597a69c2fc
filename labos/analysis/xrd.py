"""XRD analysis: phase fractions from a powder pattern by whole-pattern matching.

The pattern is modelled as a non-negative sum of every reference phase's pattern
(:mod:`labos.analysis.phases`, peaks placed by Bragg's law at the measured energy) and
a smooth background (non-negative Bernstein polynomials), with a common peak width and
zero shift found by a coarse-to-fine search, then each present phase's cell (its
d-spacings stretched by up to 1 %, as real samples differ from the cards); scales
come from Poisson-weighted
non-negative least squares. Phase fractions are the scales normalised to one (the
cards share one intensity scale per unit phase fraction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labos.analysis.phases import HC_KEV_ANGSTROM, PHASES, gaussian_pattern
from labos.core.errors import AnalysisError

COVERAGE_MARGIN_DEG = 0.5
"""The fit extends this far beyond the angle of the candidate cards' shortest common d-spacing."""
CELL_RANGE = 0.01
"""How far (relative) a phase's d-spacings may stretch from its card's in the fit."""
INSTRUMENT_FWHM_DEG = 0.03
"""Instrumental resolution assumed when converting peak width to crystallite size."""


@dataclass(frozen=True)
class PhaseFit:
    """Result of :func:`quantify_phases`."""

    fractions: dict[str, float]
    fwhm_deg: float
    shift_deg: float
    rwp: float
    """Weighted-profile R factor of the fit (0 is perfect)."""
    crystallite_nm: float
    scales: dict[str, float]
    """Fitted scale of each candidate phase (counts at a unit-intensity peak)."""
    basis: str = "intensity"
    """``intensity`` (scales normalised) or ``weight`` (divided by each phase's calibration first)."""

    def metrics(self) -> dict[str, float]:
        """As analysis metrics: ``fraction_<phase>`` for every library phase, and fit figures."""
        out = {f"fraction_{p}": float(self.fractions.get(p, 0.0)) for p in PHASES}
        out.update(
            {
                "xrd_rwp": self.rwp,
                "xrd_fwhm_deg": self.fwhm_deg,
                "crystallite_nm": self.crystallite_nm,
                "n_phases": float(sum(f >= 0.02 for f in self.fractions.values())),
            }
        )
        return out


def _background_basis(x: NDArray[np.float64], degree: int = 5) -> NDArray[np.float64]:
    from math import comb

    t = (x - x[0]) / (x[-1] - x[0])
    return np.stack([comb(degree, k) * t**k * (1 - t) ** (degree - k) for k in range(degree + 1)], axis=1)


def _fit(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    bg: NDArray[np.float64],
    names: Sequence[str],
    energy: float,
    fwhm: float,
    shift: float,
    cells: Sequence[float] | None = None,
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    from scipy.optimize import nnls  # here: scipy.optimize costs ~0.4 s of every command's start-up

    cells = cells if cells is not None else [1.0] * len(names)
    peaks = np.stack(
        [gaussian_pattern(x, PHASES[n], energy, fwhm, shift, c) for n, c in zip(names, cells, strict=True)], axis=1
    )
    a = np.concatenate([peaks, bg], axis=1)
    coef, _ = nnls(a * w[:, None], y * w, maxiter=50 * a.shape[1])
    model = a @ coef
    chi2 = float(np.sum(((y - model) * w) ** 2))
    return chi2, coef[: len(names)], model


def quantify_phases(
    two_theta_deg: ArrayLike,
    counts: ArrayLike,
    energy_kev: float,
    phases: Sequence[str] | None = None,
    calibration: Mapping[str, float] | None = None,
) -> PhaseFit:
    """Phase fractions of a powder pattern.

    Parameters
    ----------
    two_theta_deg, counts
        The integrated pattern.
    energy_kev
        The X-ray energy it was measured at (sets the wavelength for Bragg's law).
    phases
        Candidate phases (default: the whole library).
    calibration
        Each candidate phase's scale per unit weight fraction, measured on pure standards
        under the same conditions (only ratios matter; a reference intensity ratio works).
        With it the fractions are weight fractions; without it they are intensity
        shares, which are weight fractions only if every phase scatters equally.

    Raises
    ------
    AnalysisError
        If the data are malformed or no crystalline phase is found.
    """
    x = np.asarray(two_theta_deg, dtype=float)
    y = np.asarray(counts, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size < 50:
        raise AnalysisError(f"pattern needs matching 1-D 2-theta and counts arrays (got {x.shape} and {y.shape})")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))) or np.any(np.diff(x) <= 0):
        raise AnalysisError("pattern has non-finite values or a non-increasing 2-theta axis")
    if not 1.0 <= energy_kev <= 100.0:
        raise AnalysisError(f"X-ray energy {energy_kev:g} keV is implausible")
    names = list(phases) if phases is not None else list(PHASES)
    unknown = [n for n in names if n not in PHASES]
    if unknown:
        raise AnalysisError(f"unknown phase(s) {unknown}; library: {', '.join(PHASES)}")
    names = [n for n in names if _in_range(n, x, energy_kev)]
    if not names:
        raise AnalysisError("no candidate phase has a reflection inside the measured 2-theta range")
    # a card lists reflections down to some d-spacing only; beyond that angle the phase's other
    # reflections would be unexplained peaks: fit only where every candidate card is complete
    d_cut = max(min(r[0] for r in PHASES[n].reflections) for n in names)
    lam = HC_KEV_ANGSTROM / energy_kev
    if lam / (2.0 * d_cut) < 1.0:
        keep = x <= math.degrees(2.0 * math.asin(lam / (2.0 * d_cut))) + COVERAGE_MARGIN_DEG
        if np.count_nonzero(keep) >= 50:
            x, y = x[keep], y[keep]
    w = 1.0 / np.sqrt(np.maximum(y, 1.0))
    bg = _background_basis(x)
    step = float(np.median(np.diff(x)))
    best: tuple[float, float, float] | None = None
    for fwhm in np.geomspace(max(step, 0.01), 1.5, 20):
        for shift in np.linspace(-0.08, 0.08, 9):
            chi2 = _fit(x, y, w, bg, names, energy_kev, float(fwhm), float(shift))[0]
            if best is None or chi2 < best[0]:
                best = (chi2, float(fwhm), float(shift))
    assert best is not None
    _, fwhm0, shift0 = best
    for fwhm in fwhm0 * np.geomspace(0.85, 1.18, 7):  # refine around the coarse optimum
        for shift in shift0 + np.linspace(-0.015, 0.015, 7):
            chi2 = _fit(x, y, w, bg, names, energy_kev, float(fwhm), float(shift))[0]
            if chi2 < best[0]:
                best = (chi2, float(fwhm), float(shift))
    chi2, fwhm, shift = best
    cells = [1.0] * len(names)
    _, scales, _ = _fit(x, y, w, bg, names, energy_kev, fwhm, shift)
    for _ in range(2):  # each present phase's cell, by coordinate descent (within +-CELL_RANGE)
        for k in np.flatnonzero(scales > 0):
            for c in 1.0 + np.linspace(-CELL_RANGE, CELL_RANGE, 21):
                trial = [*cells[:k], float(c), *cells[k + 1 :]]
                chi2_c = _fit(x, y, w, bg, names, energy_kev, fwhm, shift, trial)[0]
                if chi2_c < chi2:
                    chi2, cells = chi2_c, trial
        _, scales, _ = _fit(x, y, w, bg, names, energy_kev, fwhm, shift, cells)
    total = float(scales.sum())
    if total <= 0:
        raise AnalysisError("no crystalline phase found: the pattern is background only")
    peak_height = float(scales.max())
    noise = float(np.sqrt(np.median(np.maximum(y, 1.0))))
    if peak_height < 5.0 * noise:
        raise AnalysisError(f"no diffraction peaks above the noise (strongest phase {peak_height:.0f} counts)")
    basis = "intensity"
    weights = scales
    if calibration is not None:
        missing = [n for n in names if not float(calibration.get(n, 0.0)) > 0.0]
        if missing:
            raise AnalysisError(f"no positive calibration for phase(s) {missing}")
        weights = np.array([s / float(calibration[n]) for n, s in zip(names, scales, strict=True)])
        basis = "weight"
    fractions = {n: float(w / float(weights.sum())) for n, w in zip(names, weights, strict=True)}
    rwp = math.sqrt(chi2 / float(np.sum((y * w) ** 2)))
    sample_fwhm = math.sqrt(max(fwhm**2 - INSTRUMENT_FWHM_DEG**2, 1e-6))
    lam_nm = HC_KEV_ANGSTROM / energy_kev / 10.0
    crystallite = 0.9 * lam_nm / (math.radians(sample_fwhm) * math.cos(math.radians(10.0)))
    return PhaseFit(
        fractions=fractions,
        fwhm_deg=fwhm,
        shift_deg=shift,
        rwp=rwp,
        crystallite_nm=crystallite,
        scales={n: float(v) for n, v in zip(names, scales, strict=True)},
        basis=basis,
    )


def _in_range(name: str, x: NDArray[np.float64], energy_kev: float) -> bool:
    pos, _ = PHASES[name].two_theta(energy_kev)
    return bool(np.any((pos > x[0]) & (pos < x[-1])))
