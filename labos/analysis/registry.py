"""Which analysis turns which instrument's readings into metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from labos.analysis.phases import PHASES
from labos.analysis.pl import METRICS as PL_METRICS
from labos.analysis.pl import pl_peak
from labos.analysis.uvvis import tauc_band_gap
from labos.analysis.xrd import quantify_phases
from labos.core.errors import AnalysisError

Analysis = Callable[[str, Sequence[Mapping[str, Any]]], dict[str, float]]


def analyse_uvvis(instrument: str, readings: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Band gap (Tauc) of the last absorbance spectrum, or the emission peak of a ``pl`` one."""
    if not readings:
        raise AnalysisError(f"{instrument}: no spectrum was recorded")
    last = readings[-1]
    mode = str(last.get(f"{instrument}_mode", "absorbance"))
    try:
        wl = np.asarray(last[f"{instrument}_wavelength"], dtype=float)
        if mode == "pl":
            return pl_peak(wl, np.asarray(last[f"{instrument}_emission"], dtype=float)).metrics()
        a = np.asarray(last[f"{instrument}_absorbance"], dtype=float)
    except KeyError as exc:
        raise AnalysisError(f"{instrument}: reading {exc.args[0]!r} is missing") from None
    return tauc_band_gap(wl, a).metrics()


def analyse_xrd(instrument: str, readings: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Phase fractions (whole-pattern matching) of the last pattern a beamline recorded."""
    if not readings:
        raise AnalysisError(f"{instrument}: no diffraction pattern was recorded")
    last = readings[-1]
    try:
        tth = np.asarray(last[f"{instrument}_two_theta"], dtype=float)
        counts = np.asarray(last[f"{instrument}_counts"], dtype=float)
        energy = float(last[f"{instrument}_beam_energy"])
    except KeyError as exc:
        raise AnalysisError(f"{instrument}: reading {exc.args[0]!r} is missing") from None
    return quantify_phases(tth, counts, energy).metrics()


ANALYSES: dict[str, tuple[Analysis, tuple[str, ...]]] = {
    "uvvis": (analyse_uvvis, ("band_gap_eV", "edge_nm", "tauc_r2", "max_absorbance", *PL_METRICS)),
    "xrd": (
        analyse_xrd,
        (*(f"fraction_{p}" for p in PHASES), "xrd_rwp", "xrd_fwhm_deg", "crystallite_nm", "n_phases"),
    ),
}


def metric_names(kind: str, instrument: str) -> list[str]:
    """The metrics an instrument of ``kind`` yields: plain and ``instrument.metric`` forms."""
    names = ANALYSES.get(kind, (None, ()))[1]
    return [*names, *(f"{instrument}.{n}" for n in names)]


def analyse(kind: str, instrument: str, readings: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Metrics of one instrument's readings, in both name forms."""
    if kind not in ANALYSES:
        return {}
    fn, _ = ANALYSES[kind]
    metrics = fn(instrument, readings)
    return {**metrics, **{f"{instrument}.{k}": v for k, v in metrics.items()}}
