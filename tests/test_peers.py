"""The peer libraries as planners: BayBE and Ax, installed (make test installs the peers extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labos.bench import load_dataset, run_once
from labos.cli import main
from labos.core.campaign import Objective, PlannerSpec
from labos.core.errors import ConfigurationError
from labos.core.results import Observation
from labos.core.space import SearchSpace
from labos.planners.registry import create_planner

DATASETS = Path(__file__).resolve().parent.parent / "benchmarks" / "datasets"
SPACE = SearchSpace.model_validate(
    {
        "x": {"type": "real", "low": 0, "high": 1},
        "n": {"type": "integer", "low": 1, "high": 3},
        "d": {"type": "discrete", "values": [0.5, 1, 2, 4], "log": True},
        "c": {"type": "categorical", "choices": ["a", "b"]},
        "mix": {"type": "composition", "components": ["p", "q"], "total": 1},
    }
)


def _point(i: int) -> dict:
    x = (i % 10) / 9
    return {
        "x": x,
        "n": 1 + i % 3,
        "d": [0.5, 1.0, 2.0, 4.0][i % 4],
        "c": "ab"[i % 2],
        "p": round(1 - x, 6),
        "q": round(x, 6),
    }


@pytest.mark.e2e  # BayBE's first recommendation: about 40 s of imports and fitting
@pytest.mark.parametrize("name", ["baybe", "ax"])
def test_a_peer_chooses_distinct_candidates_with_failures_and_pending(name):
    pytest.importorskip(name)
    planner = create_planner(PlannerSpec(name=name), SPACE, [Objective(name="y")], seed=1)
    pool = [_point(i) for i in range(30)]
    planner.tell(
        [Observation(params=pool[0], objectives={"y": 1.0}), Observation(params=pool[1], objectives={"y": 0.5})]
    )
    planner.tell([Observation(params=pool[2], objectives={}, status="failed", error="clogged")])
    picks = planner.choose(pool[3:], 3, pending=[pool[4]])
    assert len(set(picks)) == 3 and all(0 <= k < 27 for k in picks)
    (point,) = planner.ask(1)  # campaign mode: one of its random candidates, inside the space
    assert SPACE.contains(point) and point["d"] in (0.5, 1.0, 2.0, 4.0)


@pytest.mark.e2e  # BayBE's imports and first fits: about 25 s, most of a unit run's minute
@pytest.mark.parametrize("name", ["baybe", "ax"])
def test_a_peer_runs_the_benchmark_protocol_on_a_held_out_pool(name):
    pytest.importorskip(name)
    pool = load_dataset(DATASETS / "suzuki_i" / "dataset.yaml")
    result = run_once(pool, PlannerSpec(name=name), run=0, seed=0, max_cycles=8)
    assert len(result.top_count) == 8 and result.capped
    assert result.ask_seconds > 0 and result.wall_seconds >= result.ask_seconds


def test_a_missing_peer_library_is_a_clear_error_and_bench_skips_it(monkeypatch, tmp_path, capsys):
    from labos.planners import peers

    monkeypatch.setattr(peers, "peer_available", lambda module: False)
    with pytest.raises(ConfigurationError, match=r"needs the optional 'baybe' library: pip install 'labos\[peers\]'"):
        create_planner(PlannerSpec(name="baybe"), SPACE, [Objective(name="y")], seed=0)
    args = ["bench", str(DATASETS / "autoam" / "dataset.yaml"), "--planners", "ax random", "--runs", "1"]
    code = main([*args, "--max-cycles", "4", "--jobs", "1", "--out", str(tmp_path / "o"), "-q"])
    assert code == 0
    assert "ax skipped: install the optional peers extra (pip install 'labos[peers]')" in capsys.readouterr().err


@pytest.mark.e2e  # a benchmark run of both peers in a subprocess: about 35 s
def test_a_peer_keeps_the_terminal_quiet(tmp_path):
    """Ax logs every trial at INFO and BoTorch warns about jitter: none of it reaches the bench's terminal."""
    import subprocess
    import sys

    pytest.importorskip("ax")
    code = (
        "from labos.bench import load_dataset, run_once\n"
        "from labos.core.campaign import PlannerSpec\n"
        f"pool = load_dataset({str(DATASETS / 'autoam' / 'dataset.yaml')!r})\n"
        "for name in ('ax', 'baybe'):\n"
        "    run_once(pool, PlannerSpec(name=name), 0, 0, max_cycles=6)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
