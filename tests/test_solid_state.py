"""Robot arm, furnace and beamline: devices over simulators, safety before motion, XRD analysis."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from flows.campaign import run_campaign
from labos.analysis.phases import HC_KEV_ANGSTROM, PHASES
from labos.analysis.xrd import quantify_phases
from labos.core.campaign import SimulationSpec, WorkflowSpec
from labos.core.errors import AnalysisError, DeviceFault, InterlockError, OutOfBoundsError, SpecError
from labos.data.runs import RunCatalog
from labos.data.store import Store
from labos.devices import build_lab
from labos.validate import load_campaign
from simulators.world import SampleBook, SimSample
from tests.conftest import EXAMPLES

STATIONS = {"doser": ["out"], "furnace": ["boat1"], "beamline": ["stage"], "rack": 4}


@pytest.fixture
def lab():
    workflow = WorkflowSpec.model_validate(
        {
            "instruments": {
                "doser": {"kind": "synthesizer", "options": {"output": "doser/out"}},
                "robot": {"kind": "robot", "options": {"stations": STATIONS}},
                "furnace": {"kind": "furnace", "options": {"max_temperature_c": 1400}},
                "beamline": {"kind": "xrd"},
            },
            "steps": [{"action": "measure", "instrument": "beamline"}],
        }
    )
    with build_lab(workflow, SimulationSpec(landscape="batio3-solid-state", acceleration=math.inf), seed=1) as lab:
        yield lab


def wait(status):
    status.wait(timeout=10)
    return status


def make(lab, sample="s1", x=0.5):
    wait(lab["doser"].set({"sample_id": sample, "recipe": {"BaCO3": x, "TiO2": 1 - x, "milling_time": 30}}))


def move(lab, sample, src, dst):
    wait(lab["robot"].set({"sample_id": sample, "from": src, "to": dst}))


def test_robot_refuses_empty_sources_and_occupied_targets_before_moving(lab):
    robot = lab["robot"]
    before = robot.driver.occupancy()
    with pytest.raises(InterlockError, match=r"robot: cannot pick from doser/out: the slot is empty"):
        wait(robot.set({"sample_id": "s1", "from": "doser/out", "to": "furnace/boat1"}))
    make(lab, "s1")
    move(lab, "s1", "doser/out", "furnace/boat1")
    make(lab, "s2")
    with pytest.raises(InterlockError, match=r"robot: cannot place into furnace/boat1: it holds sample s1"):
        wait(robot.set({"sample_id": "s2", "from": "doser/out", "to": "furnace/boat1"}))
    with pytest.raises(InterlockError, match=r"robot: doser/out holds sample s2, not s1"):
        wait(robot.set({"sample_id": "s1", "from": "doser/out", "to": "rack/*"}))
    with pytest.raises(OutOfBoundsError, match=r"robot: to = 'moon/1' is not one of"):
        robot.set({"sample_id": "s2", "from": "doser/out", "to": "moon/1"})
    assert robot.driver.occupancy() == {**before, "furnace/boat1": "s1", "doser/out": "s2"}
    assert robot.driver.holding() is None
    move(lab, "s2", "doser/out", "rack/*")
    assert robot.target.get() == "rack/01"
    assert robot.driver.occupancy()["rack/01"] == "s2"


def test_furnace_interlock_and_limits_leave_the_sample_untouched(lab):
    make(lab)
    move(lab, "s1", "doser/out", "furnace/boat1")
    furnace, world = lab["furnace"], lab.context.resources["simulators.world"]
    state = world.book.get("s1").state
    with pytest.raises(OutOfBoundsError, match=r"furnace: temperature = 1500 degC is above the limit 1400 degC"):
        furnace.set({"sample_id": "s1", "program": {"temperature": 1500, "dwell": 60}})
    with pytest.raises(OutOfBoundsError, match=r"furnace: ramp_rate = 50 K/min is above the limit 20 K/min"):
        furnace.set({"sample_id": "s1", "program": {"temperature": 1000, "dwell": 60, "ramp_rate": 50}})
    assert world.book.get("s1").state == state and furnace.state.get() == "idle"
    wait(furnace.set({"sample_id": "s1", "program": {"temperature": 1100, "dwell": 240, "ramp_rate": 10}}))
    assert world.book.get("s1").state["progress"] > 1.0
    # ramp (107.5 min) + dwell (240 min) + cooling to 100 degC (45 min * ln(1075/75) = 119.8 min)
    assert furnace.duration.get() == pytest.approx((107.5 + 240 + 45 * math.log(1075 / 75)) * 60, rel=1e-3)
    assert furnace.profile_temperature.get().max() == pytest.approx(1100, abs=5)


def test_a_sample_not_in_the_furnace_is_a_fault(lab):
    make(lab)
    st = lab["furnace"].set({"sample_id": "s1", "program": {"temperature": 1000, "dwell": 60}})
    with pytest.raises(Exception, match="not in furnace"):
        st.wait(timeout=10)
    assert "sample 's1' is at doser/out, not in furnace" in str(st.exception())


def measure(lab, sample, exposure=10.0, energy=17.0):
    bl = lab["beamline"]
    wait(bl.energy.set(energy))
    bl.exposure.put(exposure)
    wait(bl.set(sample))
    wait(bl.shutter.set("open"))
    wait(bl.trigger())
    wait(bl.shutter.set("closed"))
    return bl.two_theta.get(), bl.counts.get()


def test_beamline_bragg_peaks_poisson_counts_and_shutter_interlock(lab):
    make(lab)
    move(lab, "s1", "doser/out", "furnace/boat1")
    wait(lab["furnace"].set({"sample_id": "s1", "program": {"temperature": 1200, "dwell": 300}}))
    move(lab, "s1", "furnace/boat1", "beamline/stage")
    bl = lab["beamline"]
    wait(bl.set("s1"))
    with pytest.raises(InterlockError, match="beamline: shutter is closed: nothing can be measured"):
        bl.trigger()
    with pytest.raises(OutOfBoundsError, match=r"beamline: energy = 40 keV is above the limit 30 keV"):
        bl.energy.set(40.0)
    assert bl.driver.beam()["energy_kev"] == 17.0
    for energy in (17.0, 12.0):  # the strongest BaTiO3 reflection, d(110) = 2.838 A, moves with the energy
        tth, counts = measure(lab, "s1", energy=energy)
        expected = 2 * math.degrees(math.asin(HC_KEV_ANGSTROM / energy / (2 * 2.838)))
        assert tth[np.argmax(counts)] == pytest.approx(expected, abs=0.06)
    _, short = measure(lab, "s1", exposure=1.0)
    _, long = measure(lab, "s1", exposure=16.0)
    ratio = long.sum() / short.sum()
    assert ratio == pytest.approx(16.0, rel=0.02)  # mean counts proportional to exposure
    assert np.allclose(long, np.round(long))  # integer counts
    _, a = measure(lab, "s1", exposure=4.0)
    ring_a = lab["beamline"].ring_current.get()
    _, b = measure(lab, "s1", exposure=4.0)
    b = b * ring_a / lab["beamline"].ring_current.get()
    flat = a < 1.2 * np.median(a)  # background between peaks: the scatter is counting noise only
    z = (a - b)[flat] / np.sqrt(a + b)[flat]
    robust_sd = 1.4826 * np.median(np.abs(z - np.median(z)))  # peak tails shift with the sample; ignore them
    assert 0.85 < robust_sd < 1.15  # Poisson scatter, not a smooth curve


def test_beam_dumps_are_transient_faults_that_close_the_shutter():
    workflow = WorkflowSpec.model_validate(
        {
            "instruments": {
                "doser": {"kind": "synthesizer", "options": {"output": "beamline/stage"}},
                "beamline": {"kind": "xrd", "options": {"faults": {"beam_dump": 1.0}}},
            },
            "steps": [{"action": "measure", "instrument": "beamline"}],
        }
    )
    with build_lab(workflow, SimulationSpec(landscape="batio3-solid-state", acceleration=math.inf), seed=1) as lab:
        make(lab)
        bl = lab["beamline"]
        wait(bl.set("s1"))
        wait(bl.shutter.set("open"))
        st = bl.trigger()
        with pytest.raises(Exception, match="beam dump"):
            st.wait(timeout=10)
        exc = st.exception()
        assert isinstance(exc, DeviceFault) and exc.transient and "beam dump" in str(exc)
        assert bl.driver.beam()["shutter"] == "closed" and bl.driver.beam()["ring_current_ma"] == 0.0


def test_unknown_fault_names_are_configuration_errors():
    workflow = WorkflowSpec.model_validate(
        {
            "instruments": {"bl": {"kind": "xrd", "options": {"faults": {"gremlins": 0.1}}}},
            "steps": [{"action": "measure", "instrument": "bl"}],
        }
    )
    with pytest.raises(Exception, match=r"unknown fault\(s\) \['gremlins'\]; this instrument can have: beam_dump"):
        build_lab(workflow, SimulationSpec(landscape="batio3-solid-state"), seed=0)


@pytest.mark.parametrize(("x", "temperature", "dwell"), [(0.5, 1150, 240), (0.5, 880, 120), (0.6, 1150, 240)])
def test_xrd_analysis_recovers_the_true_phase_fractions(lab, x, temperature, dwell):
    make(lab, "s", x)
    move(lab, "s", "doser/out", "furnace/boat1")
    wait(lab["furnace"].set({"sample_id": "s", "program": {"temperature": temperature, "dwell": dwell}}))
    move(lab, "s", "furnace/boat1", "beamline/stage")
    tth, counts = measure(lab, "s")
    world = lab.context.resources["simulators.world"]
    truth = world.landscape.phases(world.book.get("s").state).fractions
    fit = quantify_phases(tth, counts, 17.0)
    for phase in PHASES:
        assert fit.fractions.get(phase, 0.0) == pytest.approx(truth.get(phase, 0.0), abs=0.02), phase
    assert fit.rwp < 0.1


def test_xrd_analysis_rejects_bad_patterns():
    tth = np.linspace(5, 45, 1601)
    with pytest.raises(AnalysisError, match="no diffraction peaks above the noise"):
        quantify_phases(tth, np.random.default_rng(0).poisson(100, tth.size).astype(float), 17.0)
    with pytest.raises(AnalysisError, match="matching 1-D"):
        quantify_phases(tth, np.ones(10), 17.0)
    with pytest.raises(AnalysisError, match="unknown phase"):
        quantify_phases(tth, np.ones(tth.size), 17.0, phases=["Unobtainium"])


def test_sample_book_is_shared_between_processes_through_its_file(tmp_path):
    a, b = SampleBook(tmp_path / "world.sqlite"), SampleBook(tmp_path / "world.sqlite")
    a.add(SimSample(id="s1", landscape="batio3-solid-state", state={"x_ba": 0.5}, location="doser/out"))
    assert b.at("doser/out") == "s1"
    with pytest.raises(ValueError, match="doser/out is occupied by sample s1"):
        b.add(SimSample(id="s2", landscape="batio3-solid-state", state={}, location="doser/out"))
    b.move("s1", "furnace/boat1", "moved")
    assert a.get("s1").location == "furnace/boat1" and a.get("s1").history == ["moved"]
    a.close()
    b.close()


def test_workflow_errors_name_the_step():
    bad = {
        "instruments": {"robot": {"kind": "robot"}, "bl": {"kind": "xrd"}},
        "steps": [
            {"action": "transfer", "instrument": "robot", "options": {"to": "x/1"}},
            {"action": "anneal", "instrument": "bl"},
        ],
        "park": "rack/*",
    }
    with pytest.raises(ValueError, match="steps") as info:
        WorkflowSpec.model_validate(bad)
    msg = str(info.value)
    assert "steps[0]: a transfer needs options 'from' and 'to'" in msg
    assert "steps[1]: 'anneal' needs a furnace, but 'bl' is a xrd" in msg
    assert "steps: the workflow never measures anything" in msg


def test_solid_state_campaign_validation_checks_parameter_mapping_and_limits(write_yaml):
    spec = yaml.safe_load((EXAMPLES / "solid-state.yaml").read_text())
    spec["space"]["anneal_temperature"]["high"] = 1500
    spec["workflow"]["steps"][2]["parameters"]["atmosphere"] = "gas"
    with pytest.raises(SpecError) as info:
        load_campaign(write_yaml(spec))
    text = str(info.value)
    assert "space.anneal_temperature.high: 1500 is above furnace's limit for temperature (1400 degC)" in text
    assert "workflow.steps[2].parameters.atmosphere: no parameter 'gas' in the space" in text


@pytest.mark.e2e
def test_solid_state_campaign_with_faults_records_failures_and_parks_samples(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "solid-state.yaml").read_text())
    spec["data_dir"] = str(tmp_path)
    spec["budget"]["max_experiments"] = 8
    spec["planner"] = {"name": "random"}
    spec["simulation"]["acceleration"] = float("inf")
    instruments = spec["workflow"]["instruments"]
    instruments["furnace"]["options"] = {"faults": {"drift": 0.3}}
    instruments["beamline"]["options"] = {"faults": {"beam_dump": 0.3}}
    instruments["robot"]["options"]["faults"] = {"jam": 0.05}
    summary = run_campaign(spec, data_dir=tmp_path)
    assert summary.status == "completed" and summary.n_ok + summary.n_failed == 8
    with Store(tmp_path) as store:
        events = store.query("SELECT kind, payload FROM events")
        kinds = [e["kind"] for e in events]
        failed_attempts = store.query("SELECT cause FROM attempts WHERE status='failed'")
        assert len(failed_attempts) >= 2 and {r["cause"] for r in failed_attempts} == {"instrument"}
        assert "parked" in kinds  # samples stranded by faults were cleared into the rack
        with RunCatalog.open(tmp_path, summary.campaign_id) as catalog:
            runs = catalog.runs()
        experiments = [r for r in runs if r[1]["start"]["plan_name"] == "labos_experiment"]
        parks = [r for r in runs if r[1]["start"]["plan_name"] == "labos_park"]
        assert len(experiments) == kinds.count("attempt_started")  # one Bluesky run per attempt, failed ones too
        assert len(experiments) + len(parks) == len(runs) and parks  # recovery runs as Bluesky runs of its own
        assert len(parks) <= len(experiments)  # at most one recovery per attempt, after it
        assert all(r[1]["start"]["experiment_id"] and r[1]["stop"]["exit_status"] == "success" for r in parks)
        assert all(md["stop"] for _, md in runs)
        failed = store.query("SELECT error FROM experiments WHERE status='failed'")
        for row in failed:
            assert "after" in row["error"] or "beam dump" in row["error"] or "drift" in row["error"]


def test_bad_ioc_config_is_reported_by_line_without_starting_a_server(tmp_path, capsys):
    from labos.cli import main

    bad = tmp_path / "ioc.yaml"
    bad.write_text('prefix: "BL:"\ninstrument: {kind: xrd, driver: sim}\nsimulation: {acceleration: -1}\ncolour: red\n')
    assert main(["ioc", "beamline", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "ioc.yaml:3: simulation.acceleration: acceleration (-1.0) must lie between 0.001 and 1e+12" in err
    assert "ioc.yaml:4: colour: unknown key 'colour'" in err


def test_the_powder_doser_doses_masses_on_a_balance_and_an_empty_hopper_is_a_fault(lab):
    doser = lab["doser"].driver
    assert doser.powder and doser.batch_mass_mg == 2000.0
    before = dict(doser.hoppers_mg)
    make(lab, "s1", 0.4)
    recipe = json.loads(lab["doser"].recipe.get())
    assert recipe["BaCO3"] == pytest.approx(0.4, abs=0.005) and recipe["BaCO3"] != 0.4  # a balance, not a number
    used = {c: before[c] - doser.hoppers_mg[c] for c in before}
    assert used["BaCO3"] == pytest.approx(800.0, abs=10.0) and used["TiO2"] == pytest.approx(1200.0, abs=10.0)
    move(lab, "s1", "doser/out", "rack/*")
    doser.hoppers_mg["TiO2"] = 500.0  # 0.5 g left, 1.2 g needed
    status = lab["doser"].set({"sample_id": "s2", "recipe": {"BaCO3": 0.4, "TiO2": 0.6, "milling_time": 30}})
    with pytest.raises(DeviceFault, match=r"hopper TiO2 is empty: 0.50 g left, 1.200 g needed"):
        status.wait(timeout=10)
