"""No planner proposes a point already measured, failed or pending, unless the campaign asks for replicates.

The finding: skopt re-proposed the point that had just failed, four times out of four, so
one point that always fails burned ``max_consecutive_failures`` and stopped the campaign.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labos.core.campaign import Objective, PlannerSpec
from labos.core.errors import ConfigurationError
from labos.core.results import Observation
from labos.core.space import SearchSpace
from labos.planners import available, create_planner

SPACE = SearchSpace.model_validate(
    {
        "temp": {"type": "real", "low": 90, "high": 160},
        "ratio": {"type": "real", "low": 0.1, "high": 10, "log": True},
        "solvent": {"type": "categorical", "choices": ["water", "dmf"]},
    }
)
OBJ = [Objective(name="y", direction="minimize")]
FAST = {
    "skopt": {"n_initial_points": 2},
    "botorch": {"n_initial_points": 2},
    **{name: {"candidates": 200} for name in ("gp-lcb", "rf-lcb", "baybe", "ax")},
}


def _key(p):
    return tuple(sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in p.items()))


def _planners():
    from labos.planners.physbo import nimo_available

    # the agent asks a language model: its no-repeat rule is tested with scripted replies in test_agents.py
    return [n for n in available() if (n != "physbo" or nimo_available()) and n != "agent"]


@pytest.mark.slow
@pytest.mark.parametrize("name", _planners())
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(seed=st.integers(0, 2**16), fail_every=st.integers(1, 3))
def test_no_planner_proposes_a_told_or_pending_point_again(name, seed, fail_every):
    planner = create_planner(PlannerSpec(name=name, options=FAST.get(name, {})), SPACE, OBJ, seed=seed)
    told: set = set()
    for i in range(6):
        pending = planner.ask(1)
        (p,) = planner.ask(1, pending=pending)
        assert _key(p) not in told and _key(p) != _key(pending[0]), (name, i)
        for q in (*pending, p):
            if i % fail_every == 0:  # the same point would fail again
                planner.tell([Observation(params=q, status="failed", error="jammed")])
            else:
                planner.tell([Observation(params=q, objectives={"y": (q["temp"] - 120) ** 2})])
            told.add(_key(q))


def test_skopt_moves_on_from_a_point_that_always_fails():
    planner = create_planner(PlannerSpec(name="skopt", options={"n_initial_points": 1}), SPACE, OBJ, seed=0)
    seen = []
    for _ in range(4):
        (p,) = planner.ask(1)
        seen.append(_key(p))
        planner.tell([Observation(params=p, status="failed", error="always fails here")])
    assert len(set(seen)) == 4


def test_replicates_on_request_and_a_used_up_space_is_a_clear_error():
    tiny = SearchSpace.model_validate({"solvent": {"type": "categorical", "choices": ["water", "dmf"]}})
    planner = create_planner(PlannerSpec(name="random"), tiny, OBJ, seed=0)
    for _ in range(2):
        (p,) = planner.ask(1)
        planner.tell([Observation(params=p, objectives={"y": 1.0})])
    with pytest.raises(ConfigurationError, match=r"every point it can find has been tried already.*allow_repeats"):
        planner.ask(1)
    again = create_planner(PlannerSpec(name="random", options={"allow_repeats": True}), tiny, OBJ, seed=0)
    for _ in range(4):
        (p,) = again.ask(1)
        again.tell([Observation(params=p, objectives={"y": 1.0})])
