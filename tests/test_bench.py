from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import ClassVar

import pytest

from labos.bench import load_dataset, metrics, parse_planner, run_benchmark, run_once
from labos.bench.dataset import pool_points
from labos.bench.protocol import RunResult, first_reaching
from labos.cli import main
from labos.core.campaign import PlannerSpec
from labos.core.errors import ConfigurationError, SpecError

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "benchmarks" / "datasets"
REFERENCE = Path(__file__).resolve().parent / "data" / "crossed_barrel_TopCount_GP_ARD_M52_LCB1.csv"


@pytest.mark.parametrize(
    ("name", "n", "n_top"),
    [("crossed_barrel", 600, 30), ("perovskite", 94, 5), ("agnp", 164, 9), ("p3ht", 178, 9), ("autoam", 100, 5)],
)
def test_liang_pools_match_the_paper(name, n, n_top):
    pool = load_dataset(DATASETS / name / "dataset.yaml")
    assert (pool.n, pool.n_top) == (n, n_top)
    assert "Liang" in pool.spec.citation
    assert (DATASETS / name / "SOURCE.md").exists()


def test_metrics_reproduce_the_published_crossed_barrel_numbers():
    """The authors' own GP-ARD runs, through our metric code: 23/34/51 cycles, AF(0.8) = 14.12."""
    with REFERENCE.open() as fh:
        rows = list(csv.reader(fh))[1:]
    results = [RunResult("ref", int(r[0]), 0, [int(v) for v in r[1:]], 0.0) for r in rows]
    m = metrics(results, n=600, n_top=30)
    assert (m["cycles_0.5"], m["cycles_0.8"], m["cycles_1.0"]) == (23, 34, 51)
    assert m["af_0.8"] == pytest.approx(480 / 34)
    assert m["af_0.5"] == pytest.approx(300 / 23)
    assert m["ef_max"] == pytest.approx(14.56, abs=0.01)


def test_first_reaching():
    import numpy as np

    assert first_reaching(np.array([0.0, 0.5, 0.5, 1.0]), 0.5) == 2
    assert first_reaching(np.array([0.0, 0.2]), 0.5) is None


def test_a_run_follows_the_protocol_and_is_reproducible(tmp_path):
    pool = load_dataset(DATASETS / "perovskite" / "dataset.yaml")
    a = run_once(pool, PlannerSpec(name="random"), run=3, seed=7)
    b = run_once(pool, PlannerSpec(name="random"), run=3, seed=7)
    assert a.top_count == b.top_count
    assert a.top_count[-1] == pool.n_top  # stops once every top candidate is found
    assert all(y - x in (0, 1) for x, y in zip(a.top_count, a.top_count[1:], strict=False))
    full = run_once(pool, PlannerSpec(name="random"), run=3, seed=7, stop_when_done=False)
    assert len(full.top_count) == pool.n  # the pool is exhausted, never re-measured


@pytest.mark.slow  # an optimisation-quality check (~20 s), not a unit test
def test_botorch_finds_top_candidates_faster_than_random_on_autoam():
    pool = load_dataset(DATASETS / "autoam" / "dataset.yaml")
    gp = [run_once(pool, PlannerSpec(name="botorch"), r, 0) for r in range(3)]
    rs = [run_once(pool, PlannerSpec(name="random"), r, 0) for r in range(3)]
    assert metrics(gp, pool.n, pool.n_top)["cycles_1.0"] < metrics(rs, pool.n, pool.n_top)["cycles_1.0"]


@pytest.mark.slow
def test_bench_outputs_and_same_seed_same_numbers(tmp_path):
    ds = [DATASETS / "perovskite" / "dataset.yaml"]
    planners = [parse_planner("random"), parse_planner("skopt:n_initial_points=3")]
    s1 = run_benchmark(ds, planners, runs=3, seed=1, jobs=2, out=tmp_path / "a")
    s2 = run_benchmark(ds, planners, runs=3, seed=1, jobs=1, out=tmp_path / "b")

    def numbers(s):  # everything but wall-clock timings
        return {
            d: {p: {k: v for k, v in m.items() if k != "ask_seconds_mean"} for p, m in e["planners"].items()}
            for d, e in s["datasets"].items()
        }

    assert numbers(s1) == numbers(s2)
    out = tmp_path / "a"
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["datasets"]["perovskite"]["planners"]["random"]
    assert entry["runs"] == 3 and entry["seed"] == 1
    for key in ("cycles_0.5", "cycles_0.8", "cycles_1.0", "af_0.5", "af_0.8", "af_1.0", "ef_max"):
        assert key in entry
    assert entry["af_0.8"] == pytest.approx(math.ceil(0.8 * 94) / entry["cycles_0.8"])
    assert (out / "perovskite_top.png").read_bytes()[:4] == b"\x89PNG"
    assert "| perovskite | skopt:n_initial_points=3 | 3 | 94 |" in (out / "results.md").read_text()
    with (out / "results.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 2


def test_bad_planner_and_dataset_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="unknown planner 'gpx'"):
        parse_planner("gpx")
    with pytest.raises(ConfigurationError, match="option acquisition: Input should be"):
        parse_planner("botorch:acquisition=pi")
    with pytest.raises(ConfigurationError, match="must look like key=value"):
        parse_planner("botorch:acquisition")
    with pytest.raises(ConfigurationError, match="no pool-based mode"):
        parse_planner("sobol")
    bad = tmp_path / "d.yaml"
    bad.write_text("name: d\ncsv: d.csv\ninputs: [a]\nobjective: {column: y, direction: up}\ncitation: me\n")
    with pytest.raises(SpecError, match=r"objective.direction"):
        load_dataset(bad)
    bad.write_text("name: d\ncsv: d.csv\ninputs: [a]\nobjective: {column: y, direction: minimize}\ncitation: me\n")
    with pytest.raises(SpecError, match="file not found"):
        load_dataset(bad)
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SpecError, match=r"column\(s\) not in d.csv: \['y'\]"):
        load_dataset(bad)
    (tmp_path / "d.csv").write_text("a,y\n1,2\n2,oops\n")
    with pytest.raises(SpecError, match=r"d\.csv:3: objective 'oops' is not a number"):
        load_dataset(bad)


class FakeNimo:
    """A stand-in for NIMS-OS's file protocol: proposes the unmeasured rows with the smallest x0."""

    calls: ClassVar[list[dict]] = []

    @staticmethod
    def selection(method, input_file, output_file, num_objectives, num_proposals, physbo_score, minimization):
        import csv as _csv

        with open(input_file) as f:
            rows = list(_csv.reader(f))
        header, body = rows[0], rows[1:]
        FakeNimo.calls.append({"method": method, "header": header, "measured": sum(r[-1] != "" for r in body)})
        free = sorted((float(r[0]), i) for i, r in enumerate(body) if r[-1] == "")
        with open(output_file, "w", newline="") as f:
            w = _csv.writer(f)
            w.writerow(["actions", *header[:-1]])
            for _, i in free[:num_proposals]:
                w.writerow([i, *body[i][:-1]])


def test_physbo_planner_speaks_the_nimo_file_protocol(monkeypatch):
    import sys

    from labos.core.campaign import Objective, PlannerSpec
    from labos.core.results import Observation
    from labos.planners import create_planner

    monkeypatch.setitem(sys.modules, "nimo", FakeNimo)
    pool = load_dataset(DATASETS / "autoam" / "dataset.yaml")
    points = pool_points(pool)
    planner = create_planner(PlannerSpec(name="physbo"), pool.space, [Objective(name="y")], seed=0)
    first = planner.choose(points, 2)  # random initial points
    planner.tell([Observation(params=points[i], objectives={"y": float(pool.y[i])}) for i in first])
    remaining = [p for i, p in enumerate(points) if i not in first]
    (pick,) = planner.choose(remaining, 1)
    call = FakeNimo.calls[-1]
    assert call["method"] == "PHYSBO" and call["measured"] == 2  # measured points are training rows
    x0 = [p[pool.space.names[0]] for p in remaining]
    assert x0[pick] == min(x0)
    (proposal,) = planner.ask(1)
    assert pool.space.problems(proposal) == []


def test_physbo_without_nimo_is_a_clear_error_and_bench_skips_it(monkeypatch, capsys, tmp_path):
    import sys

    from labos.core.campaign import Objective, PlannerSpec
    from labos.core.errors import ConfigurationError
    from labos.planners import create_planner

    monkeypatch.setitem(sys.modules, "nimo", None)  # import nimo -> ImportError
    pool = load_dataset(DATASETS / "autoam" / "dataset.yaml")
    with pytest.raises(ConfigurationError, match=r"pip install 'labos\[nimo\]'"):
        create_planner(PlannerSpec(name="physbo"), pool.space, [Objective(name="y")], seed=0)
    code = main(["bench", str(DATASETS / "autoam" / "dataset.yaml"), "--planners", "physbo", "--out", str(tmp_path)])
    assert code == 2
    assert "physbo skipped: install the optional nimo extra" in capsys.readouterr().err


def test_hindsight_ranking_finds_a_smooth_datasets_tops_at_once_and_a_noisy_ones_late(tmp_path):
    """benchmarks/hindsight.py: a smooth response is ranked perfectly; pure scatter is not."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("hindsight", ROOT / "benchmarks" / "hindsight.py")
    assert spec and spec.loader
    hindsight = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hindsight)
    grid = np.random.default_rng(0).uniform(0, 1, (80, 2))
    for name, y in [("smooth", -((grid - 0.3) ** 2).sum(1)), ("scatter", np.random.default_rng(1).normal(size=80))]:
        rows = "".join(f"{a},{b},{v}\n" for (a, b), v in zip(grid, y, strict=True))
        (tmp_path / f"{name}.csv").write_text("a,b,y\n" + rows)
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\ncsv: {name}.csv\ninputs: [a, b]\nobjective: {{column: y, direction: maximize}}\n"
            "citation: synthetic\n"
        )
    smooth = hindsight.hindsight(str(tmp_path / "smooth.yaml"), {})
    assert smooth["cycles_to_kth_top"] == [1, 2, 3, 4]  # ceil(0.05 * 80) tops, found first
    assert smooth["af_0.8"] == pytest.approx(64 / 4)
    scatter = hindsight.hindsight(str(tmp_path / "scatter.yaml"), {})
    assert scatter["cycles_1.0"] > 20  # noise has no trend to rank by
