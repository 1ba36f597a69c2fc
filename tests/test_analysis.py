from __future__ import annotations

import numpy as np
import pytest

from labos.analysis import tauc_band_gap
from labos.analysis.uvvis import HC_EV_NM
from labos.core.errors import AnalysisError
from simulators.landscapes import SampleTruth
from simulators.spectrometer import absorbance_model

WL = np.arange(300.0, 801.0, 1.0)


def spectrum(gap, urbach=0.025, amplitude=0.8, scattering=0.02, noise=0.001, seed=0):
    truth = SampleTruth(band_gap_ev=gap, urbach_ev=urbach, amplitude=amplitude, scattering=scattering)
    rng = np.random.default_rng(seed)
    return absorbance_model(WL, truth) + rng.normal(0, noise, WL.size)


@pytest.mark.parametrize("gap", [1.8, 2.1, 2.4, 2.8, 3.2])
def test_tauc_recovers_the_gap_from_a_noisy_spectrum(gap):
    res = tauc_band_gap(WL, spectrum(gap))
    assert res.band_gap_ev == pytest.approx(gap, abs=0.012)
    assert res.r2 > 0.99
    assert res.metrics()["edge_nm"] == pytest.approx(HC_EV_NM / res.band_gap_ev)


def test_scattering_background_does_not_shift_the_gap():
    clean = tauc_band_gap(WL, spectrum(2.3, scattering=0.0)).band_gap_ev
    hazy = tauc_band_gap(WL, spectrum(2.3, scattering=0.05)).band_gap_ev
    assert hazy == pytest.approx(clean, abs=0.005)


def test_wavelength_order_does_not_matter():
    a = spectrum(2.2)
    assert tauc_band_gap(WL[::-1], a[::-1]).band_gap_ev == pytest.approx(tauc_band_gap(WL, a).band_gap_ev)


@pytest.mark.parametrize(
    ("wl", "a", "message"),
    [
        (WL, np.full(WL.size, 0.01) + np.random.default_rng(0).normal(0, 1e-4, WL.size), "no absorption edge"),
        (WL, np.where(WL > 500, np.nan, 1.0), "NaN"),
        (WL[:10], np.ones(10), "at least 31"),
        (WL, np.ones(5), "equal length"),
        (WL, np.linspace(0.0, 2.0, WL.size), "does not rise|poor|outside|steep|no absorption edge"),
    ],
)
def test_unusable_spectra_raise_analysis_errors(wl, a, message):
    with pytest.raises(AnalysisError, match=message):
        tauc_band_gap(wl, a)
