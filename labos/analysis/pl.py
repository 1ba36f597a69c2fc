"""Photoluminescence analysis: the emission peak's position, width and height.

The dark level (the median of the dimmest tenth of the spectrum) is subtracted; the
peak's position is the vertex of a parabola fitted to the logarithm of the counts
above half maximum, in photon energy (exact for a Gaussian band in energy, close for
the slightly asymmetric bands of real emitters); its width is the full width at half
maximum between the two interpolated half-maximum crossings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from labos.analysis.uvvis import HC_EV_NM
from labos.core.errors import AnalysisError


@dataclass(frozen=True)
class PLResult:
    """Result of :func:`pl_peak`."""

    peak_nm: float
    peak_ev: float
    fwhm_nm: float
    fwhm_ev: float
    intensity: float
    """Peak height above the dark level (counts)."""

    def metrics(self) -> dict[str, float]:
        """As analysis metrics (names campaign objectives refer to)."""
        return {
            "pl_peak_nm": self.peak_nm,
            "pl_peak_eV": self.peak_ev,
            "pl_fwhm_nm": self.fwhm_nm,
            "pl_fwhm_eV": self.fwhm_ev,
            "pl_intensity": self.intensity,
        }


METRICS = ("pl_peak_nm", "pl_peak_eV", "pl_fwhm_nm", "pl_fwhm_eV", "pl_intensity")


def pl_peak(wavelength_nm: ArrayLike, counts: ArrayLike, *, min_snr: float = 10.0) -> PLResult:
    """The emission peak of a photoluminescence spectrum.

    Parameters
    ----------
    wavelength_nm, counts
        The spectrum, shape ``(n,)`` each, any order.
    min_snr
        The peak must rise this many Poisson standard deviations above the dark level.

    Raises
    ------
    AnalysisError
        Malformed data, no peak above the noise, or a peak whose half maximum is not
        inside the measured range.
    """
    wl = np.asarray(wavelength_nm, dtype=float)
    y = np.asarray(counts, dtype=float)
    if wl.ndim != 1 or wl.shape != y.shape or wl.size < 31:
        raise AnalysisError(f"PL spectrum needs matching 1-D arrays of >= 31 points (got {wl.shape} and {y.shape})")
    if not (np.all(np.isfinite(wl)) and np.all(np.isfinite(y))) or np.any(wl <= 0):
        raise AnalysisError("PL spectrum has non-finite values or non-positive wavelengths")
    e = HC_EV_NM / wl
    order = np.argsort(e)
    e, y = e[order], y[order]
    dark = float(np.median(np.sort(y)[: max(y.size // 10, 3)]))
    from scipy.signal import savgol_filter  # here: importing scipy.signal costs ~1 s of every start-up

    signal = savgol_filter(y, max(7, (y.size // 60) | 1), 2) - dark
    top = int(np.argmax(signal))
    height = float(signal[top])
    if height < min_snr * np.sqrt(max(dark, 1.0)):
        raise AnalysisError(f"no emission peak above the noise (peak {height:.0f} counts over a dark level {dark:.0f})")
    half = height / 2.0
    lo = top
    while lo > 0 and signal[lo] > half:
        lo -= 1
    hi = top
    while hi < signal.size - 1 and signal[hi] > half:
        hi += 1
    if signal[lo] > half or signal[hi] > half:
        raise AnalysisError("the emission peak's half maximum lies outside the measured range")
    e_lo = float(np.interp(half, [signal[lo], signal[lo + 1]], [e[lo], e[lo + 1]]))
    e_hi = float(np.interp(half, [signal[hi], signal[hi - 1]], [e[hi], e[hi - 1]]))
    band = slice(lo + 1, hi)
    if hi - lo - 1 >= 3:
        a, b, _ = np.polyfit(e[band], np.log(np.maximum(signal[band], 1e-9)), 2)
        peak_ev = float(-b / (2.0 * a)) if a < 0 else float(e[top])
        if not e_lo <= peak_ev <= e_hi:
            peak_ev = float(e[top])
    else:
        peak_ev = float(e[top])
    return PLResult(
        peak_nm=HC_EV_NM / peak_ev,
        peak_ev=peak_ev,
        fwhm_nm=HC_EV_NM / e_lo - HC_EV_NM / e_hi,
        fwhm_ev=e_hi - e_lo,
        intensity=height,
    )
