"""Discrete numeric parameters: ordered, spaced levels, and nothing between them.

An amount made at a few levels (6, 12, 24, 48 mg) was either a category (no trend carried
across levels: stuck runs on the lnp3 pool) or a real (a planner proposes 17 mg, which
cannot be made). ``type: discrete`` is both: the model sees the spacing, every planner
proposes only the levels, and the instruments' limits are checked on them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from labos.agents.backends import ScriptedBackend
from labos.agents.grammar import gbnf, reply_schema
from labos.agents.planner import AgentPlanner
from labos.agents.prompt import check_proposals, describe_space
from labos.bench import load_dataset
from labos.cli import main
from labos.core.campaign import Campaign, Objective, PlannerSpec
from labos.core.results import Observation
from labos.core.space import LinearConstraint, SearchSpace
from labos.data.store import Store
from labos.planners.encoding import encode
from labos.planners.registry import create_planner
from tests.conftest import ROOT

DRUG = [6, 12, 24, 48]
SURF = [0.0, 0.0025, 0.005, 0.01]
SPACE = SearchSpace.model_validate(
    {
        "drug": {"type": "discrete", "values": [48, 6, 24, 12], "log": True, "unit": "mg"},
        "surfactant": {"type": "discrete", "values": SURF},
        "x": {"type": "real", "low": 0, "high": 1},
        "lipid": {"type": "categorical", "choices": ["a", "b", "c"]},
    }
)
OBJ = [Objective(name="y", direction="minimize")]


def f(p: dict[str, Any]) -> float:
    return (math.log(p["drug"] / 48)) ** 2 + (p["surfactant"] - 0.005) ** 2 * 1e4 + (p["x"] - 0.3) ** 2


def errors(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        SearchSpace.model_validate({"d": spec})
    return str(info.value)


# ------------------------------------------------------------------- space
def test_values_are_kept_sorted_and_integers_stay_integers() -> None:
    drug, surf = SPACE.root["drug"], SPACE.root["surfactant"]
    assert drug.values == DRUG and all(type(v) is int for v in drug.values)
    assert surf.values == SURF and all(type(v) is float for v in surf.values)
    assert (drug.low, drug.high) == (6, 48)
    mixed = SearchSpace.model_validate({"d": {"type": "discrete", "values": [2, 0.5, 1]}}).root["d"]
    assert mixed.values == [0.5, 1.0, 2.0] and all(type(v) is float for v in mixed.values)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "discrete", "values": [1, 2, 2]}, "value(s) listed more than once: 2"),
        ({"type": "discrete", "values": [1, 1.0000000000001]}, "listed more than once"),
        ({"type": "discrete", "values": [1]}, "at least 2 items"),
        ({"type": "discrete", "values": [1, float("nan")]}, "values must be finite numbers, got nan"),
        ({"type": "discrete", "values": [1, float("inf")]}, "values must be finite numbers, got inf"),
        ({"type": "discrete", "values": [1, "a"]}, "values.1"),
        ({"type": "discrete", "values": [0, 1, 2], "log": True}, "a log-scale parameter needs values > 0, got 0"),
        ({"type": "discrete", "values": [1, 2], "low": 0}, "Extra inputs are not permitted"),
    ],
)
def test_bad_declarations_are_refused_with_the_reason(spec: dict[str, Any], message: str) -> None:
    assert message in errors(spec)


def test_only_the_levels_are_members_within_rounding() -> None:
    good = {"drug": 12, "surfactant": 0.005, "x": 0.5, "lipid": "a"}
    assert SPACE.problems(good) == []
    assert SPACE.problems({**good, "drug": 13}) == ["drug: 13 is not one of the values [6, 12, 24, 48]"]
    assert SPACE.problems({**good, "drug": "12"}) == ["drug: '12' is not a finite number"]
    assert SPACE.problems({**good, "surfactant": float("nan")}) == ["surfactant: nan is not a finite number"]
    assert SPACE.problems({**good, "surfactant": 0.1 * 0.05}) == []  # 0.005000000000000001
    normal = SPACE.normalise({**good, "drug": 12.0, "surfactant": 0.1 * 0.05})
    assert normal["drug"] == 12 and type(normal["drug"]) is int and normal["surfactant"] == 0.005


def test_the_unit_cube_gives_every_level_an_equal_share_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    points = [SPACE.from_unit(u) for u in rng.random((4000, SPACE.unit_dim))]
    for name, levels in (("drug", DRUG), ("surfactant", SURF)):
        shares = [sum(p[name] == v for p in points) / len(points) for v in levels]
        # by the gaps, the surfactant's 0.0 would get 1/8 of the draws and 0.01 a quarter
        assert all(abs(s - 0.25) < 0.03 for s in shares), (name, shares)
    for d in DRUG:
        for s in SURF:
            p = {"drug": d, "surfactant": s, "x": 0.25, "lipid": "b"}
            assert SPACE.from_unit(SPACE.to_unit(p)) == p


def test_models_see_where_each_level_lies_not_its_rank() -> None:
    rows = encode(
        SPACE, [{"drug": d, "surfactant": s, "x": 0.0, "lipid": "a"} for d, s in zip(DRUG, SURF, strict=True)]
    )
    np.testing.assert_allclose(rows[:, 0], [0, 1 / 3, 2 / 3, 1])  # 6 .. 48 doubling: even on a log scale
    np.testing.assert_allclose(rows[:, 1], [0, 0.25, 0.5, 1])  # 0.01 is twice as far from 0.005 as 0.0025


def test_constraints_may_name_discrete_parameters() -> None:
    space = SPACE.with_constraints([LinearConstraint.model_validate("drug + 1000*surfactant <= 30")])
    assert space.infeasibility() == []
    assert space.problems({"drug": 24, "surfactant": 0.01, "x": 0.1, "lipid": "a"}) == [
        "constraint 1*drug + 1000*surfactant <= 30 violated (34)"
    ]
    planner = create_planner(PlannerSpec(name="botorch", options={"n_initial_points": 2}), space, OBJ, seed=0)
    for _ in range(3):
        (p,) = planner.ask(1)
        assert space.problems(p) == []
        planner.tell([Observation(params=p, objectives={"y": f(p)})])
    bad = SPACE.with_constraints([LinearConstraint.model_validate("drug >= 50")])
    assert "can never hold" in bad.infeasibility()[0][1]


# ---------------------------------------------------------------- planners
def _levels_only(points: list[dict[str, Any]]) -> bool:
    return all(p["drug"] in DRUG and p["surfactant"] in SURF and SPACE.problems(p) == [] for p in points)


@pytest.mark.parametrize("name", ["random", "sobol", "skopt", "botorch", "gp-lcb", "rf-lcb"])
def test_every_planner_proposes_only_the_levels_and_learns_the_trend(name: str) -> None:
    opts = {"n_initial_points": 3} if name in ("skopt", "botorch") else {}
    planner = create_planner(PlannerSpec(name=name, options=opts), SPACE, OBJ, seed=2)
    asked: list[dict[str, Any]] = []
    for _ in range(5):
        pts = planner.ask(2)
        asked += pts
        planner.tell([Observation(params=p, objectives={"y": f(p)}) for p in pts])
    assert _levels_only(asked), asked
    assert all(type(p["drug"]) is int for p in asked)
    if name in ("botorch", "gp-lcb"):  # a model that sees the spacing finds the largest drug amount
        assert max(p["drug"] for p in asked[-4:]) == 48


def test_pool_mode_reads_a_discrete_declaration_from_a_dataset() -> None:
    path = ROOT / "benchmarks" / "results" / "2026-12-06_discrete" / "lnp3_levels_drug_loading" / "dataset.yaml"
    pool = load_dataset(path)
    assert len(pool.planner_points) == 768
    assert {p["drug_input"] for p in pool.planner_points} == set(DRUG)
    assert {p["surfractant_input"] for p in pool.planner_points} == set(SURF)


def test_a_dataset_row_off_the_levels_is_an_error_naming_its_line(tmp_path, capsys) -> None:
    (tmp_path / "d.csv").write_text("a,y\n1,0.5\n2,0.7\n3,0.2\n2.5,0.1\n")
    spec = {
        "name": "d",
        "csv": "d.csv",
        "inputs": ["a"],
        "objective": {"column": "y", "direction": "minimize"},
        "space": {"a": {"type": "discrete", "values": [1, 2, 3]}},
        "citation": "made up for the test",
    }
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(spec))
    out = str(tmp_path / "out")
    assert main(["bench", str(tmp_path / "d.yaml"), "--planners", "random", "--runs", "1", "--out", out]) != 0
    err = capsys.readouterr().err
    assert "d.csv:5" in err and "a: 2.5 is not one of the values [1, 2, 3]" in err


# ------------------------------------------------------------------ agents
def test_the_agent_is_told_the_levels_and_its_grammar_allows_only_them() -> None:
    assert "- drug: one of the numbers [6, 12, 24, 48] mg, log scale, no other value" in describe_space(SPACE)
    g = gbnf(SPACE, "propose")
    assert 'v-drug ::= "6" | "12" | "24" | "48"' in g
    assert 'v-surfactant ::= "0.0" | "0.0025" | "0.005" | "0.01"' in g
    props = reply_schema(SPACE, "propose")["properties"]["proposals"]["items"]["properties"]
    assert props["drug"] == {"enum": DRUG}


def test_an_agent_reply_between_levels_is_refused_and_the_fallback_stays_on_them() -> None:
    point = {"drug": 17, "surfactant": 0.005, "x": 0.5, "lipid": "a"}
    reply = '{"hypothesis": "more drug", "proposals": [' + str(point).replace("'", '"') + "]}"
    _, points, errs = check_proposals(reply, SPACE, 1, lambda p: False)
    assert points == [] and any("drug: 17 is not one of the values [6, 12, 24, 48]" in e for e in errs)
    backend = ScriptedBackend([reply, reply])
    agent = AgentPlanner(SPACE, OBJ, seed=1, options={"mode": "agent", "max_retries": 1}, backend=backend)
    assert _levels_only(agent.ask(1))


# ------------------------------------------------------------- the lab
def test_validate_checks_the_levels_against_the_instruments_limits(demo_spec, write_yaml, capsys) -> None:
    demo_spec["space"]["temperature"] = {"type": "discrete", "values": [80, 120, 400], "unit": "degC"}
    path = write_yaml(demo_spec)
    assert main(["validate", str(path)]) != 0
    err = capsys.readouterr()
    text = err.out + err.err
    lines = path.read_text().splitlines()
    start = next(i for i, t in enumerate(lines) if t.strip() == "temperature:")
    line = next(i for i, t in enumerate(lines[start:], start + 1) if "values:" in t)  # the error points at the values
    msg = f"campaign.yaml:{line}: space.temperature.values: 400 is above synth's limit for temperature (220 degC)"
    assert msg in text, text


@pytest.mark.e2e
def test_a_campaign_on_the_simulated_lab_makes_only_the_levels(small_spec, write_yaml) -> None:
    levels = [80, 110, 140, 170, 200]
    small_spec["space"]["temperature"] = {"type": "discrete", "values": levels, "unit": "degC"}
    small_spec["budget"]["max_experiments"] = 6
    small_spec["planner"] = {"name": "botorch", "options": {"n_initial_points": 3}}
    path = write_yaml(small_spec)
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "-q"]) == 0
    space = Campaign.model_validate(small_spec).space
    with Store(small_spec["data_dir"]) as store:
        (c,) = store.campaigns()
        exps = store.experiments(c.id)
    assert len(exps) == 6 and all(space.problems(e.params) == [] for e in exps)
    assert {e.params["temperature"] for e in exps} <= set(levels)


def test_a_misspelt_or_missing_type_names_discrete_among_the_kinds(demo_spec, write_yaml, capsys) -> None:
    demo_spec["space"]["temperature"] = {"type": "discreet", "values": [80, 120]}
    assert main(["validate", str(write_yaml(demo_spec))]) != 0
    out = capsys.readouterr()
    assert (
        "space.temperature: unknown type 'discreet'; expected one of 'real', 'integer', 'discrete'" in out.out + out.err
    )
    demo_spec["space"]["temperature"] = {"values": [80, 120]}
    assert main(["validate", str(write_yaml(demo_spec))]) != 0
    out = capsys.readouterr()
    assert "missing 'type' (one of: real, integer, discrete, categorical, composition)" in out.out + out.err


def test_levels_must_suit_the_input_they_drive() -> None:
    from labos.checks import _limit_problems
    from labos.devices.drivers import InputSpec

    p = SearchSpace.model_validate({"v": {"type": "discrete", "values": [1, 2.5, 4]}}).root["v"]
    whole = InputSpec("stir", "integer", low=0, high=10)
    assert [(q.path, q.message) for q in _limit_problems("v", "v", p, whole, "synth")] == [
        ("space.v.values", "synth takes whole numbers for stir; not [2.5]")
    ]
    choice = InputSpec("mode", "choice", choices=("fast", "slow"))
    assert [q.message for q in _limit_problems("v", "v", p, choice, "synth")] == [
        "synth: input 'mode' is a choice, not a number"
    ]
    bounded = InputSpec("t", "real", low=2, high=3.5, unit="degC")
    assert [(q.path, q.message) for q in _limit_problems("v", "v", p, bounded, "synth")] == [
        ("space.v.values", "1 is below synth's limit for t (2 degC)"),
        ("space.v.values", "4 is above synth's limit for t (3.5 degC)"),
    ]
