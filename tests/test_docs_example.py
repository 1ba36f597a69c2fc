"""The planner example in docs/planner-developers.md is real code: run it."""

from __future__ import annotations

import re
from pathlib import Path

from labos.core.campaign import Objective
from labos.core.results import Observation
from labos.core.space import SearchSpace

DOC = Path(__file__).resolve().parent.parent / "docs" / "planner-developers.md"


def test_documented_local_search_planner_works():
    block = re.search(r"```python\n# my_planner/__init__.py\n(.*?)```", DOC.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    space = SearchSpace.model_validate(
        {"m": {"type": "composition", "components": ["a", "b"]}, "t": {"type": "real", "low": 0, "high": 10}}
    )
    planner = namespace["LocalSearch"](space, [Objective(name="y")], seed=0, options={"radius": 0.05})
    for _ in range(30):
        (p,) = planner.ask(1)
        assert space.problems(p) == []
        planner.tell([Observation(params=p, objectives={"y": (p["t"] - 7) ** 2 + (p["a"] - 0.3) ** 2})])
    best = min(planner.observations, key=planner.loss)
    assert abs(best.params["t"] - 7) < 1.0
