from __future__ import annotations

import math
import time

import numpy as np
import pytest

from labos.core.campaign import SimulationSpec, WorkflowSpec
from labos.core.errors import ConfigurationError, DeviceFault, OutOfBoundsError, RegistryError
from labos.devices import Synthesizer, UVVisSpectrometer, build_lab
from labos.devices.build import InstrumentError
from labos.devices.drivers import DriverContext
from simulators import create_driver
from simulators.clock import SimClock

WORKFLOW = WorkflowSpec.model_validate(
    {
        "instruments": {"synth": {"kind": "synthesizer"}, "uvvis": {"kind": "uvvis"}},
        "steps": [{"action": "synthesize", "instrument": "synth"}, {"action": "measure", "instrument": "uvvis"}],
    }
)
RECIPE = {"CsPbBr3": 0.6, "CsPbI3": 0.4, "temperature": 150.0, "reaction_time": 120.0, "ligand": "oleylamine"}


@pytest.fixture
def lab():
    lab = build_lab(WORKFLOW, SimulationSpec(acceleration=math.inf), seed=1)
    yield lab
    lab.close()


def make(lab, sample="s1", recipe=RECIPE):
    st = lab["synth"].set({"sample_id": sample, "recipe": recipe})
    st.wait(5)
    return st


def measure(lab, sample="s1", t_int=0.1):
    uv: UVVisSpectrometer = lab["uvvis"]
    uv.set(sample).wait(5)
    uv.integration_time.put(t_int)
    uv.trigger().wait(5)
    return uv.read()


def test_lab_builds_ophyd_devices_through_the_driver_registry(lab):
    assert isinstance(lab["synth"], Synthesizer)
    assert isinstance(lab["uvvis"], UVVisSpectrometer)
    assert set(lab["synth"].inputs) >= {"CsPbBr3", "temperature", "ligand"}


def test_synthesis_records_executed_recipe_and_realistic_duration(lab):
    make(lab)
    reading = lab["synth"].read()
    assert reading["synth_sample_id"]["value"] == "s1"
    # two dispenses + heating 125 K at 20 K/min + 120 s reaction + 45 s quench
    assert 540 < reading["synth_duration"]["value"] < 600
    assert '"temperature"' in reading["synth_recipe"]["value"]


def test_limits_are_checked_before_anything_moves(lab):
    synth: Synthesizer = lab["synth"]
    world = lab.context.resources["simulators.world"]
    before = dict(synth.driver.reservoirs)
    with pytest.raises(OutOfBoundsError, match=r"synth: temperature = 300 degC is above the limit 220 degC"):
        synth.set({"sample_id": "hot", "recipe": {**RECIPE, "temperature": 300.0}})
    with pytest.raises(OutOfBoundsError, match="synth: ligand = 'soap' is not one of"):
        synth.set({"sample_id": "x", "recipe": {**RECIPE, "ligand": "soap"}})
    with pytest.raises(OutOfBoundsError, match="dispenses nothing"):
        synth.set({"sample_id": "x", "recipe": {"temperature": 100.0}})
    with pytest.raises(OutOfBoundsError, match="unknown input"):
        synth.set({"sample_id": "x", "recipe": {**RECIPE, "pressure": 2}})
    assert synth.driver.reservoirs == before
    assert len(world.book) == 0
    assert synth.state.get() == "idle"


def test_empty_reservoir_is_a_fault_not_a_silent_zero():
    lab = build_lab(
        WorkflowSpec.model_validate(
            {
                "instruments": {
                    "synth": {"kind": "synthesizer", "options": {"reservoir_ml": 3.0}},
                    "uvvis": {"kind": "uvvis"},
                },
                "steps": [{"action": "measure", "instrument": "uvvis"}],
            }
        ),
        SimulationSpec(acceleration=math.inf),
        seed=0,
    )
    with lab:
        make(lab, "a")  # uses ~1.2 mL of CsPbBr3
        make(lab, "b")
        st = lab["synth"].set({"sample_id": "c", "recipe": RECIPE})
        with pytest.raises(Exception):  # noqa: B017, PT011 - ophyd wraps the device's exception
            st.wait(5)
        assert isinstance(st.exception(), DeviceFault)
        assert "reservoir CsPbBr3 is empty" in str(st.exception())
        assert lab["synth"].state.get() == "fault"


def test_spectrum_noise_falls_with_integration_time(lab):
    make(lab)

    def noise(t_int):
        spectra = [measure(lab, t_int=t_int)["uvvis_absorbance"]["value"] for _ in range(6)]
        return float(np.std(np.diff(np.asarray(spectra), axis=0)[:, -80:]))  # transparent red end

    short, long = noise(0.01), noise(1.0)
    assert long < short / 5  # sqrt(100) = 10 in theory


def test_spectrum_edge_follows_the_composition(lab):
    make(lab, "br", {**RECIPE, "CsPbBr3": 1.0, "CsPbI3": 0.0})
    make(lab, "i", {**RECIPE, "CsPbBr3": 0.0, "CsPbI3": 1.0})
    wl = measure(lab, "br")["uvvis_wavelength"]["value"]
    a_br = measure(lab, "br")["uvvis_absorbance"]["value"]
    a_i = measure(lab, "i")["uvvis_absorbance"]["value"]
    at_600 = int(np.argmin(abs(wl - 600)))
    assert a_i[at_600] > 0.2 > a_br[at_600]  # iodide absorbs orange light, bromide does not


def test_measuring_an_unknown_sample_faults(lab):
    st = lab["uvvis"].set("ghost")
    with pytest.raises(Exception):  # noqa: B017, PT011
        st.wait(5)
    assert "sample 'ghost' does not exist" in str(st.exception())


def test_integration_time_limit(lab):
    make(lab)
    lab["uvvis"].set("s1").wait(5)
    lab["uvvis"].integration_time.put(60.0)
    with pytest.raises(OutOfBoundsError, match="uvvis: integration_time = 60 s is above the limit 10 s"):
        lab["uvvis"].trigger()


def test_clock_accelerates_but_keeps_simulated_durations():
    clock = SimClock(acceleration=3600.0, start=0.0)
    t0 = time.monotonic()
    clock.sleep(36.0)  # 36 simulated seconds
    assert clock.now() == 36.0
    assert time.monotonic() - t0 < 0.5
    with pytest.raises(ValueError, match="acceleration must be > 0"):
        SimClock(0)


def test_injected_faults_are_transient_device_faults():
    world_ctx = DriverContext(seed=0, simulation={"acceleration": math.inf, "fault_rate": 1.0})
    synth = create_driver("synthesizer", "synth", {}, world_ctx)
    with pytest.raises(DeviceFault, match=r"synth: dispense needle jammed") as info:
        synth.synthesize("s", RECIPE)
    assert info.value.transient


def test_bad_driver_configuration_is_a_clear_error():
    ctx = DriverContext(seed=0, simulation={})
    with pytest.raises(ConfigurationError, match=r"instrument 'synth': option volume: unknown option for the"):
        create_driver("synthesizer", "synth", {"volume": 1}, ctx)
    with pytest.raises(ConfigurationError, match="unknown landscape 'glass'"):
        create_driver("synthesizer", "synth", {}, DriverContext(seed=0, simulation={"landscape": "glass"}))
    bad = WorkflowSpec.model_validate(
        {
            "instruments": {"uvvis": {"kind": "uvvis", "driver": "ftp"}},
            "steps": [{"action": "measure", "instrument": "uvvis"}],
        }
    )
    with pytest.raises(InstrumentError, match="unknown driver 'ftp'; known drivers: epics, registry, sim, zmq") as info:
        build_lab(bad, SimulationSpec(), 0)
    assert info.value.instrument == "uvvis"
    assert isinstance(info.value.__cause__, RegistryError)
