from __future__ import annotations

import json
import subprocess
import sys

import pytest

from labos.cli import main
from labos.core.campaign import Campaign
from labos.core.errors import SpecError
from labos.core.loader import parse_model
from labos.validate import load_campaign

BAD_BOUNDS = """\
name: demo
space:
  temperature:
    type: real
    low: 900
    high: 300
objectives:
  - name: gap_error
    metric: band_gap_eV
    target: 2.1
budget:
  max_experiments: 10
workflow:
  instruments:
    synth: {kind: synthesizer}
    uvvis: {kind: uvvis}
  steps:
    - {action: synthesize, instrument: synth}
    - {action: measure, instrument: uvvis}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_model(Campaign, text, "c.yaml")
    return [p.format("c.yaml") for p in info.value.problems]


def test_bounds_error_has_location_and_line():
    assert problems(BAD_BOUNDS) == ["c.yaml:3: space.temperature: high (300) must be greater than low (900)"]


def test_every_problem_is_reported_with_its_line():
    text = BAD_BOUNDS.replace("max_experiments: 10", "max_experiments: 0\n  colour: red").replace(
        "name: demo", "name: demo\nplaner: skopt"
    )
    got = problems(text)
    assert "c.yaml:2: planer: unknown key 'planer'" in got
    assert any(p.startswith("c.yaml:4: space.temperature: high (300)") for p in got)
    assert any(
        p.startswith("c.yaml:13: budget.max_experiments: Input should be greater than or equal to 1") for p in got
    )
    assert "c.yaml:14: budget.colour: unknown key 'colour'" in got


def test_missing_keys_and_bad_types():
    got = problems("name: x\nspace: {t: {type: reel, low: 0, high: 1}}\n")
    assert any("space.t: unknown type 'reel'" in p for p in got)
    assert any("objectives: required key is missing" in p for p in got)
    assert any("workflow: required key is missing" in p for p in got)


def test_workflow_cross_references():
    text = BAD_BOUNDS.replace("high: 300", "high: 1000").replace(
        "- {action: measure, instrument: uvvis}", "- {action: measure, instrument: xrd}"
    )
    got = problems(text)
    assert any("instrument 'xrd' is not declared (declared: synth, uvvis)" in p for p in got)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "c.yaml:2: YAML syntax error"),
        ("", "expected a mapping of keys at the top level, got an empty file"),
        ("- a\n- b\n", "got a list"),
        ("name: a\nname: b\n", "c.yaml:2: name: key appears more than once"),
    ],
)
def test_malformed_files(text, expected):
    got = problems(text)
    assert any(expected in p for p in got), got


def test_demo_example_is_valid():
    from tests.conftest import EXAMPLES

    c = load_campaign(EXAMPLES / "demo.yaml")
    assert c.space.names == ["CsPbCl3", "CsPbBr3", "CsPbI3", "temperature", "reaction_time", "ligand"]


def test_deep_checks_name_planner_options_and_instrument_limits(demo_spec, write_yaml):
    demo_spec["planner"] = {"name": "skopt", "options": {"acq_fun": "EI", "n_initial_points": 0}}
    demo_spec["space"]["temperature"]["high"] = 300
    demo_spec["space"]["pressure"] = {"type": "real", "low": 1, "high": 2}
    demo_spec["objectives"].append({"name": "colour"})
    demo_spec["workflow"]["steps"][1]["options"] = {"integration_time": 60, "gain": 2}
    path = write_yaml(demo_spec)
    with pytest.raises(SpecError) as info:
        load_campaign(path)
    text = str(info.value)
    assert "planner.options.acq_fun: unknown option for planner 'skopt'" in text
    assert "planner.options.n_initial_points: Input should be greater than or equal to 1 (got 0)" in text
    assert "space.temperature.high: 300 is above synth's limit for temperature (220 degC)" in text
    assert "space.pressure: no instrument of the workflow takes 'pressure'" in text
    assert "objectives: planner 'skopt' optimises a single objective, but 2 are given" in text
    assert "objectives[1].name: no measurement yields metric 'colour'" in text
    assert "workflow.steps[1].options.integration_time: uvvis: 60 s is above the limit 10 s" in text
    assert "workflow.steps[1].options.gain: uvvis has no input 'gain'" in text
    # each located on its line of the file
    assert all(p.line is not None for p in info.value.problems)


def test_unknown_planner_lists_known_ones(demo_spec, write_yaml):
    demo_spec["planner"] = {"name": "bayes"}
    known = "agent, ax, baybe, botorch, gp-lcb, physbo, random, rf-lcb, skopt, sobol"
    with pytest.raises(SpecError, match=rf"unknown planner 'bayes'; known planners: {known}"):
        load_campaign(write_yaml(demo_spec))


def test_cli_validate_exit_codes(write_yaml, capsys, tmp_path):
    bad = write_yaml(BAD_BOUNDS, "bad.yaml")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "space.temperature: high (300) must be greater than low (900)" in err
    assert "1 problem" in err
    assert not (tmp_path / "labos-data").exists()  # nothing written

    from tests.conftest import EXAMPLES

    assert main(["validate", str(EXAMPLES / "demo.yaml")]) == 0
    assert "ok - campaign 'perovskite-bandgap-demo'" in capsys.readouterr().out

    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_cli_schema_is_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Campaign"
    assert {"name", "space", "objectives", "budget", "workflow"} <= set(schema["required"])


def test_installed_command_exits_2_on_a_broken_file(write_yaml):
    bad = write_yaml(BAD_BOUNDS, "bad.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "labos.cli", "validate", str(bad)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "bad.yaml:3: space.temperature: high (300) must be greater than low (900)" in proc.stderr


def test_bad_command_line_overrides_are_clear_errors(capsys, tmp_path):
    from tests.conftest import EXAMPLES

    demo = str(EXAMPLES / "demo.yaml")
    assert main(["run", demo, "--max-experiments", "0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "command line: 1 problem" in err
    assert "budget.max_experiments: Input should be greater than or equal to 1" in err
    assert "Traceback" not in err
    assert main(["run", demo, "--data-dir", "/proc/labos-cannot-write-here", "-q"]) == 2
    assert "cannot create the data directory /proc/labos-cannot-write-here" in capsys.readouterr().err


def test_constraints_are_parsed_located_and_enforced_by_the_space(demo_spec, write_yaml):
    spec = dict(demo_spec, constraints=["CsPbCl3 + CsPbI3 <= 0.5", "temperature - 0.1*reaction_time >= 90"])
    campaign = load_campaign(write_yaml(spec))
    point = {"CsPbCl3": 0.4, "CsPbBr3": 0.0, "CsPbI3": 0.6, "temperature": 120.0, "reaction_time": 30.0}
    point["ligand"] = "oleylamine"
    assert campaign.space.problems(point) == ["constraint 1*CsPbCl3 + 1*CsPbI3 <= 0.5 violated (1)"]
    spec["constraints"] = ["CsPbCl3 + ligand <= 0.5", "x << 1"]
    with pytest.raises(SpecError) as info:
        load_campaign(write_yaml(spec))
    (problem,) = info.value.problems
    assert problem.path == "constraints[1]" and problem.line is not None and "'x << 1' is not" in problem.message


def test_a_space_shared_by_two_campaigns_keeps_each_ones_constraints_apart(demo_spec):
    from labos.core.space import SearchSpace

    space = SearchSpace.model_validate(demo_spec["space"])
    tight = Campaign.model_validate(dict(demo_spec, space=space, constraints=["CsPbCl3 + CsPbI3 <= 0.5"]))
    free = Campaign.model_validate(dict(demo_spec, space=space))
    assert len(tight.space.constraints) == 1
    assert not free.space.constraints and not space.constraints


def test_the_demo_command_finds_its_shipped_campaign():
    from labos.cli.common import examples_dir

    assert (examples_dir() / "demo.yaml").is_file()
