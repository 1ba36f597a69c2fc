"""Photoluminescence: the spectrometer's PL mode end to end, and the peak analysis on other line shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bluesky import RunEngine

from labos.analysis.pl import pl_peak
from labos.analysis.registry import analyse
from labos.analysis.uvvis import HC_EV_NM
from labos.core.campaign import SimulationSpec, WorkflowSpec
from labos.core.errors import AnalysisError, OutOfBoundsError
from labos.data.documents import RunReadings
from labos.devices import build_lab
from labos.plans import experiment_plan
from labos.plans.experiment import PlannedStep

WL = np.linspace(350.0, 850.0, 501)


def test_peak_position_and_width_on_line_shapes_unlike_a_gaussian_in_energy():
    rng = np.random.default_rng(3)
    for _ in range(20):
        centre, fwhm = float(rng.uniform(450, 750)), float(rng.uniform(15, 60))
        # a Lorentzian in wavelength (long tails), with a sloping dark level and Poisson noise
        clean = 5000.0 / (1.0 + ((WL - centre) / (fwhm / 2.0)) ** 2)
        dark = 80.0 + 0.05 * (WL - 350.0)
        counts = rng.poisson(clean + dark).astype(float)
        r = pl_peak(WL, counts)
        assert r.peak_nm == pytest.approx(centre, abs=1.5)
        assert r.fwhm_nm == pytest.approx(fwhm, rel=0.12)  # the dark level's slope biases the half maximum a little
        assert r.intensity == pytest.approx(5000.0, rel=0.08)


def test_no_peak_or_a_peak_off_the_range_is_an_analysis_error():
    rng = np.random.default_rng(0)
    with pytest.raises(AnalysisError, match="no emission peak above the noise"):
        pl_peak(WL, rng.poisson(100.0, WL.size).astype(float))
    edge = 4000.0 * np.exp(-0.5 * ((WL - 860.0) / 30.0) ** 2) + 50.0
    with pytest.raises(AnalysisError, match="half maximum lies outside the measured range"):
        pl_peak(WL, edge)
    with pytest.raises(AnalysisError, match="non-finite"):
        pl_peak(WL, np.full(WL.size, np.nan))


def test_the_spectrometer_measures_pl_and_the_analysis_finds_the_stokes_shifted_band():
    wf = WorkflowSpec.model_validate(
        {
            "instruments": {"synth": {"kind": "synthesizer"}, "uvvis": {"kind": "uvvis"}},
            "steps": [{"action": "synthesize", "instrument": "synth"}, {"action": "measure", "instrument": "uvvis"}],
        }
    )
    recipe = {"CsPbBr3": 0.6, "CsPbI3": 0.4, "temperature": 150.0, "reaction_time": 60.0}
    with build_lab(wf, SimulationSpec(acceleration=math.inf), seed=0) as lab:
        RE = RunEngine({}, context_managers=[])
        got = {}
        for mode in ("absorbance", "pl"):
            cap = RunReadings()
            token = RE.subscribe(cap)
            steps = [PlannedStep("synthesize", "synth", recipe), PlannedStep("measure", "uvvis", {"mode": mode})]
            RE(experiment_plan(lab.devices, steps, f"s-{mode}", {}))
            RE.unsubscribe(token)
            got[mode] = analyse("uvvis", "uvvis", cap.readings["uvvis"])
            assert cap.readings["uvvis"][-1]["uvvis_mode"] == mode
        world = lab.context.resources["simulators.world"]
        truth = world.landscape.optical(world.book.get("s-pl").state)
        with pytest.raises(OutOfBoundsError, match="mode = 'raman' is not one of"):
            RE(experiment_plan(lab.devices, [PlannedStep("measure", "uvvis", {"mode": "raman"})], "s-pl", {}))
    assert "band_gap_eV" in got["absorbance"] and "pl_peak_nm" not in got["absorbance"]
    pl = got["pl"]
    assert pl["pl_peak_eV"] == pytest.approx(truth.band_gap_ev - 2 * truth.urbach_ev, abs=0.01)
    assert pl["pl_peak_eV"] < got["absorbance"]["band_gap_eV"]  # Stokes-shifted below the absorption edge
    assert pl["pl_fwhm_eV"] == pytest.approx(0.05 + 2.5 * truth.urbach_ev, rel=0.1)
    assert HC_EV_NM / pl["pl_peak_eV"] == pytest.approx(pl["pl_peak_nm"])
