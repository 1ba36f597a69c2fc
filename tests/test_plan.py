from __future__ import annotations

import math

import pytest
from bluesky import RunEngine

from labos.core.campaign import SimulationSpec, StepSpec, WorkflowSpec
from labos.data.documents import RunReadings
from labos.devices import build_lab
from labos.plans import experiment_plan, resolve_steps

WORKFLOW = WorkflowSpec.model_validate(
    {
        "instruments": {"synth": {"kind": "synthesizer"}, "uvvis": {"kind": "uvvis"}},
        "steps": [
            {"action": "synthesize", "instrument": "synth", "options": {"ligand": "octylamine"}},
            {"action": "measure", "instrument": "uvvis", "options": {"integration_time": 0.5}},
        ],
    }
)
PARAMS = {"CsPbBr3": 0.5, "CsPbI3": 0.5, "temperature": 140.0, "reaction_time": 30.0}


@pytest.fixture
def lab():
    lab = build_lab(WORKFLOW, SimulationSpec(acceleration=math.inf), seed=0)
    yield lab
    lab.close()


@pytest.fixture
def RE():
    return RunEngine({}, context_managers=[])


def steps(params=PARAMS):
    return resolve_steps(WORKFLOW.steps, params, {0: {p: p for p in params}})


def test_resolve_steps_merges_fixed_options_and_parameters():
    s = steps()
    assert s[0].inputs == {"ligand": "octylamine", **PARAMS}
    assert s[1].inputs == {"integration_time": 0.5}
    assert resolve_steps([StepSpec(action="measure", instrument="uvvis")], {}, {})[0].inputs == {}


def test_one_experiment_is_one_run_with_provenance_in_the_start_document(lab, RE):
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    cap = RunReadings()
    RE.subscribe(cap)
    md = {"campaign_id": "c", "experiment_id": "c-0001", "parameters": PARAMS, "planner": "skopt"}
    RE(experiment_plan(lab.devices, steps(), "c-0001-a1", md))
    names = [n for n, _ in docs]
    assert names.count("start") == 1 and names.count("stop") == 1
    start = docs[0][1]
    assert start["campaign_id"] == "c" and start["experiment_id"] == "c-0001"
    assert start["parameters"] == PARAMS and start["planner"] == "skopt"
    assert start["sample_id"] == "c-0001-a1"
    assert docs[-1][1]["exit_status"] == "success"
    assert set(cap.readings) == {"synth", "uvvis"}
    assert len(cap.readings["uvvis"][0]["uvvis_absorbance"]) == 501
    assert lab["uvvis"].integration_time.get() == 0.5


def test_a_limit_violation_closes_the_run_as_failed(lab, RE):
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    bad = steps({**PARAMS, "temperature": 400.0})
    with pytest.raises(Exception, match="temperature = 400 degC is above the limit 220 degC"):
        RE(experiment_plan(lab.devices, bad, "s", {}))
    stop = docs[-1][1]
    assert docs[-1][0] == "stop" and stop["exit_status"] == "fail"
    assert "above the limit" in stop["reason"]
    assert len(lab.context.resources["simulators.world"].book) == 0


def test_plan_messages_without_hardware(lab):
    msgs = [m.command for m in experiment_plan(lab.devices, steps(), "s", {})]
    assert msgs[0] == "open_run" and msgs[-1] == "close_run"
    assert msgs.count("set") == 3  # synthesize, integration time, load sample
    assert msgs.count("trigger") == 2
