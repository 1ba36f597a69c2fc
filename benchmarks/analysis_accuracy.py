"""Accuracy of labos's analyses on data from models they were not built from.

* **XRD phase quantification** on powder patterns computed by pymatgen's
  ``XRDCalculator`` from crystal structures (structure factors, multiplicities,
  Lorentz-polarisation; Debye-Waller and preferred orientation off) for mixtures of
  BaTiO3, witherite BaCO3 and rutile TiO2 with known weight fractions, with Voigt
  peaks (Caglioti instrument width, Scherrer size broadening), a curved background,
  an amorphous hump and Poisson counts. labos's analysis knows none of this: it fits
  its own reference cards (rounded published d-spacings and intensities) with Gaussian
  peaks. Reported: the weight-fraction MAE with the fitted scales normalised (the
  analysis's default, intensity shares), and with a calibration measured as a
  laboratory would, on a pure-phase pattern of each phase (generated with other seeds
  and crystallite sizes than the mixtures, which are never used to tune anything).
* **Band gaps** (Tauc) on absorbance spectra from a model unlike the simulator's:
  direct and indirect allowed transitions, an Urbach tail joined at ``Eg + Eu``, a
  ``lambda^-1`` scattering background with a sloping baseline, Gaussian noise.

No real measured pattern or spectrum with a known answer ships with a package on the
index here (pymatgen ships structures, not measured patterns; RRUFF and the COD are
not reachable offline), so none is used.

Run ``python benchmarks/analysis_accuracy.py [--seed N] [--mixtures N] [--spectra N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import voigt_profile

from labos.analysis.phases import PHASES
from labos.analysis.uvvis import HC_EV_NM, tauc_band_gap
from labos.analysis.xrd import quantify_phases
from labos.core.errors import AnalysisError

HC_KEV_ANGSTROM = 12.398419843320026
TWO_THETA = np.arange(5.0, 45.0 + 0.0125, 0.025)


def structures() -> dict[str, object]:
    """The three phases as crystal structures (pymatgen), with their sources."""
    import warnings

    from pymatgen.core import Lattice, Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Full symbol not available" for the Pmcn setting
        return _structures(Lattice, Structure)


def _structures(Lattice: Any, Structure: Any) -> dict[str, object]:
    return {
        # cubic perovskite, a from the pseudo-cubic cell of room-temperature BaTiO3
        "BaTiO3": Structure.from_spacegroup(
            "Pm-3m", Lattice.cubic(4.006), ["Ba", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
        ),
        # rutile, P4_2/mnm (Baur 1961 / Abrahams & Bernstein 1971)
        "TiO2_rutile": Structure.from_spacegroup(
            "P4_2/mnm", Lattice.tetragonal(4.5937, 2.9587), ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]]
        ),
        # witherite, Pmcn (de Villiers 1971)
        "BaCO3": Structure.from_spacegroup(
            "Pmcn",
            Lattice.orthorhombic(5.3126, 8.8958, 6.4284),
            ["Ba", "C", "O", "O"],
            [[0.25, 0.4166, 0.7548], [0.25, 0.7568, -0.0848], [0.25, 0.9011, -0.0950], [0.4641, 0.6809, -0.0865]],
        ),
    }


@dataclass(frozen=True)
class Sticks:
    """One phase's reflections at one energy: 2-theta (deg) and intensity per unit weight."""

    two_theta: NDArray[np.float64]
    intensity: NDArray[np.float64]


def sticks(energy_kev: float) -> dict[str, Sticks]:
    """Reflections of every phase, scaled to intensity per unit *weight* of the phase."""
    import warnings

    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    calc = XRDCalculator(wavelength=HC_KEV_ANGSTROM / energy_kev)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, s in structures().items():
            pattern = calc.get_pattern(s, scaled=False, two_theta_range=(TWO_THETA[0] - 1, TWO_THETA[-1] + 1))
            # per unit cell -> per unit volume (1 / V^2) -> per unit mass (/ density)
            per_mass = np.asarray(pattern.y) / (s.volume**2 * s.density)
            out[name] = Sticks(np.asarray(pattern.x), per_mass)
    return out


def powder_pattern(
    weights: dict[str, float], phase_sticks: dict[str, Sticks], energy_kev: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Poisson counts of a mixture with weight fractions ``weights``."""
    lam_nm = HC_KEV_ANGSTROM / energy_kev / 10.0
    size_nm = float(rng.uniform(40.0, 150.0))
    u, v, w = 0.004, -0.002, 0.0012  # Caglioti, deg^2
    clean = np.zeros_like(TWO_THETA)
    for name, frac in weights.items():
        st = phase_sticks[name]
        for tt, inten in zip(st.two_theta, st.intensity, strict=True):
            theta = math.radians(tt / 2.0)
            fwhm_g = math.sqrt(max(u * math.tan(theta) ** 2 + v * math.tan(theta) + w, 1e-6))
            fwhm_l = math.degrees(0.9 * lam_nm / (size_nm * math.cos(theta)))
            sigma, gamma = fwhm_g / (2.0 * math.sqrt(2.0 * math.log(2.0))), fwhm_l / 2.0
            clean += frac * inten * voigt_profile(TWO_THETA - tt, sigma, gamma)
    strongest = max(float(st.intensity.max()) for st in phase_sticks.values())
    clean *= 1.5e3 / strongest  # one flux for every pattern: a pure strong scatterer peaks at ~30k counts
    background = (
        300.0
        + 400.0 * np.exp(-(TWO_THETA - TWO_THETA[0]) / 6.0)
        + float(rng.uniform(50.0, 200.0)) * np.exp(-(((TWO_THETA - 22.0) / 5.0) ** 2))  # amorphous hump
    )
    return rng.poisson(clean + background).astype(float)


def calibrate(energy_kev: float, phase_sticks: dict[str, Sticks], rng: np.random.Generator) -> dict[str, float]:
    """Scale per unit weight fraction of each phase, from a pure-phase pattern (a standard)."""
    return {
        name: quantify_phases(
            TWO_THETA, powder_pattern({name: 1.0}, phase_sticks, energy_kev, rng), energy_kev, phases=[name]
        ).scales[name]
        for name in phase_sticks
    }


def xrd_benchmark(seed: int, n_mixtures: int) -> dict[str, object]:
    """Weight-fraction errors of the analysis on independent mixtures (two energies)."""
    rng = np.random.default_rng(seed)
    names = list(structures())
    rows = []
    for energy in (17.0, 20.0):
        phase_sticks = sticks(energy)
        cal = calibrate(energy, phase_sticks, np.random.default_rng(seed + 1000))
        for _ in range(n_mixtures // 2):
            k = int(rng.integers(1, 4))
            chosen = list(rng.choice(names, size=k, replace=False))
            w = rng.dirichlet(np.ones(k))
            weights = {n: float(x) for n, x in zip(chosen, w, strict=True)}
            counts = powder_pattern(weights, phase_sticks, energy, rng)
            raw = quantify_phases(TWO_THETA, counts, energy)
            calibrated = quantify_phases(TWO_THETA, counts, energy, phases=names, calibration=cal)
            truth = {n: weights.get(n, 0.0) for n in PHASES}
            rows.append(
                {
                    "energy_kev": energy,
                    "truth": truth,
                    "raw": raw.fractions,
                    "calibrated": calibrated.fractions,
                    "rwp": raw.rwp,
                }
            )

    def mae(key: str, phases: list[str]) -> float:
        return float(np.mean([abs(r[key].get(p, 0.0) - r["truth"][p]) for r in rows for p in phases]))

    return {
        "n_mixtures": len(rows),
        "mae_intensity_shares_vs_weight": mae("raw", list(PHASES)),
        "mae_calibrated_weight": mae("calibrated", names),
        "max_abs_error_calibrated": float(
            max(abs(r["calibrated"].get(p, 0.0) - r["truth"][p]) for r in rows for p in names)
        ),
        "median_rwp": float(np.median([r["rwp"] for r in rows])),
        "spurious_library_phases_mean": float(
            np.mean([sum(r["raw"].get(p, 0.0) for p in PHASES if p not in names) for r in rows])
        ),
    }


WAVELENGTH = np.linspace(300.0, 900.0, 501)


def absorbance(
    eg: float, transition: str, eu: float, thickness: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """An absorbance spectrum from a model unlike the simulator's (see the module docstring)."""
    e = HC_EV_NM / WAVELENGTH
    if transition == "direct":

        def alpha(x: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.sqrt(np.clip(x - eg, 0.0, None)) / x

    else:

        def alpha(x: NDArray[np.float64]) -> NDArray[np.float64]:
            return 4.0 * np.clip(x - eg, 0.0, None) ** 2 / x

    join = eg + eu
    a_join = float(alpha(np.array([join]))[0])
    tail = a_join * np.exp(np.clip((e - join) / eu, -60.0, 0.0))
    a = np.where(e >= join, alpha(e), tail) * thickness
    background = float(rng.uniform(0.01, 0.05)) + float(rng.uniform(0.02, 0.08)) * (400.0 / WAVELENGTH)
    background += float(rng.uniform(-0.01, 0.01)) * (WAVELENGTH - 600.0) / 300.0  # sloping baseline
    return a + background + rng.normal(0.0, 0.002, size=e.shape)


def band_gap_benchmark(seed: int, n_spectra: int) -> dict[str, object]:
    """Band-gap errors (eV) on direct and indirect gaps, and a direct-Tauc fit of indirect gaps."""
    rng = np.random.default_rng(seed)
    out: dict[str, object] = {}
    for transition, low, high in (("direct", 1.6, 3.0), ("indirect", 1.5, 2.8)):
        errors, naive, failed = [], [], 0
        for _ in range(n_spectra // 2):
            eg = float(rng.uniform(low, high))
            spectrum = absorbance(eg, transition, float(rng.uniform(0.02, 0.07)), float(rng.uniform(0.8, 1.6)), rng)
            try:
                errors.append(abs(tauc_band_gap(WAVELENGTH, spectrum, transition=transition).band_gap_ev - eg))
            except AnalysisError:
                failed += 1
            if transition == "indirect":
                with contextlib.suppress(AnalysisError):  # a failed fit counts as no estimate
                    naive.append(abs(tauc_band_gap(WAVELENGTH, spectrum).band_gap_ev - eg))
        out[f"{transition}_mae_ev"] = float(np.mean(errors)) if errors else math.nan
        out[f"{transition}_max_error_ev"] = float(np.max(errors)) if errors else math.nan
        out[f"{transition}_failed"] = failed
        if naive:
            out["indirect_fitted_as_direct_mae_ev"] = float(np.mean(naive))
    return out


def main() -> None:
    """Print both benchmarks as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--mixtures", type=int, default=24)
    ap.add_argument("--spectra", type=int, default=40)
    args = ap.parse_args()
    result = {
        "seed": args.seed,
        "xrd": xrd_benchmark(args.seed, args.mixtures),
        "band_gap": band_gap_benchmark(args.seed, args.spectra),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
