"""The analyses on data from models they were not built from (benchmarks/analysis_accuracy.py).

Bounds are the worst of three benchmark seeds (2026-2028, 24 mixtures and 40 spectra
each) with a margin; the analysis choices they depend on (the indirect-edge onset) were
made on other spectra (seed 7). A regression in the peak or edge models breaks them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("pymatgen")
    spec = importlib.util.spec_from_file_location("analysis_accuracy", ROOT / "benchmarks" / "analysis_accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["analysis_accuracy"] = module
    spec.loader.exec_module(module)
    return module


def test_xrd_weight_fractions_on_pymatgen_patterns_are_within_bounds(bench):
    result = bench.xrd_benchmark(seed=2026, n_mixtures=12)
    # calibrated on pure-phase standards: 0.005-0.031 MAE over the three benchmark seeds
    assert result["mae_calibrated_weight"] < 0.045
    # without calibration the intensity shares are biased by the phases' scattering power
    assert result["mae_intensity_shares_vs_weight"] > result["mae_calibrated_weight"]
    assert result["spurious_library_phases_mean"] < 0.02  # absent library phases stay near zero


def test_band_gaps_on_an_independent_absorption_model_are_within_bounds(bench):
    result = bench.band_gap_benchmark(seed=2026, n_spectra=20)
    assert result["direct_failed"] == 0 and result["indirect_failed"] == 0
    assert result["direct_mae_ev"] < 0.015  # 0.005 eV over the benchmark seeds
    assert result["indirect_mae_ev"] < 0.03  # 0.010 eV
    # fitting an indirect edge as direct is badly wrong: the transition must be chosen
    assert result["indirect_fitted_as_direct_mae_ev"] > 0.3
