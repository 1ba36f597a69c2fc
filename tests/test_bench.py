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


def test_each_run_lists_the_candidates_in_its_own_order_the_same_for_every_planner(monkeypatch):
    """A planner that picks by position (the baselines' last of equal maxima) must not read the file's order."""
    import numpy as np

    from labos.bench import protocol
    from labos.bench.protocol import candidate_order

    assert candidate_order(10, [2, 5], run=0, seed=0, order="pool") == [0, 1, 3, 4, 6, 7, 8, 9]
    shuffled = candidate_order(100, [2, 5], run=0, seed=0)
    assert sorted(shuffled) == candidate_order(100, [2, 5], run=0, seed=0, order="pool")
    assert shuffled != sorted(shuffled)
    assert shuffled == candidate_order(100, [2, 5], run=0, seed=0)  # same run, same order
    assert shuffled != candidate_order(100, [2, 5], run=1, seed=0)
    assert shuffled != candidate_order(100, [2, 5], run=0, seed=1)
    with pytest.raises(ValueError, match="candidate order must be one of shuffled, pool, got 'sorted'"):
        candidate_order(10, [], run=0, seed=0, order="sorted")

    pool = load_dataset(DATASETS / "perovskite" / "dataset.yaml")
    points = pool_points(pool)
    shown: list[tuple[list[dict], list[dict]]] = []

    class Last:  # test double: the last candidate listed, whatever its value
        def __init__(self, *args, **kwargs):
            self.told: list[dict] = []
            shown.append((self.told, []))

        def tell(self, observations):
            self.told.extend(dict(o.params) for o in observations)

        def choose(self, candidates, n=1):
            shown[-1][1].append(dict(candidates[0]))
            return [len(candidates) - 1]

    monkeypatch.setattr(protocol, "create_planner", Last)
    for order in ("pool", "shuffled", "shuffled"):
        run_once(pool, PlannerSpec(name="random"), run=4, seed=3, max_cycles=6, order=order)
    (told_pool, _), (told_a, first_a), (told_b, first_b) = shown
    assert told_a[:2] == told_b[:2] == told_pool[:2]  # the initial picks do not depend on the order
    rng = np.random.default_rng([3, 4])
    rng.integers(2**31)
    initial = [int(i) for i in rng.choice(pool.n, size=2, replace=False)]
    assert told_pool[:2] == [dict(points[i]) for i in initial]
    order = candidate_order(pool.n, initial, run=4, seed=3)
    assert first_a == first_b and first_a[0] == dict(points[order[0]])
    assert told_a[2:] == [dict(points[i]) for i in order[::-1][:4]]  # the last listed, then the last of the rest
    assert told_pool[2:] == [dict(points[i]) for i in range(pool.n) if i not in initial][::-1][:4]


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
            d: {p: {k: v for k, v in m.items() if "seconds" not in k} for p, m in e["planners"].items()}
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


DECLARED = """\
name: declared
csv: d.csv
columns: [ligand, n, a, b, yield]
skip_rows: 1
inputs: [ligand, n, a, b]
objective: {column: yield, direction: maximize}
space:
  ligand: {type: categorical, choices: [1, 2, 3]}
  n: {type: integer, low: 1, high: 5}
  mix: {type: composition, components: [a, b], total: 1}
citation: a test
ties: TIES
"""


def _declared(tmp_path: Path, rows: str, ties: str = "all") -> Path:
    (tmp_path / "d.csv").write_text(rows)
    path = tmp_path / "d.yaml"
    path.write_text(DECLARED.replace("TIES", ties))
    return path


def test_a_declared_space_reaches_the_planner_in_its_own_types(tmp_path):
    """Headerless CSV, a TYPE row skipped, categories coded as numbers, an integer, a rounded composition."""
    rows = "TYPE,DATA,DATA,DATA,DATA\n1,2,0.5,0.5,10\n2,3.0,0.299,0.7,20\n3,1,1,0,20\n"
    pool = load_dataset(_declared(tmp_path, rows))
    assert pool.space.names == ["ligand", "n", "a", "b"]
    first, second, _ = pool_points(pool)
    assert first == {"ligand": 1, "n": 2, "a": 0.5, "b": 0.5}
    assert second["n"] == 3 and isinstance(second["n"], int)
    assert math.isclose(second["a"] + second["b"], 1.0)  # 0.999 rescaled, within composition_rtol
    assert all(pool.space.contains(p) for p in pool_points(pool))
    # 3 candidates, ceil(0.15) = 1 top; rows 2 and 3 tie at 20: 'all' counts both, file order the first
    assert (pool.top, pool.tied_at_cutoff) == ({1, 2}, 2)
    assert load_dataset(_declared(tmp_path, rows, "file_order")).top == {1}


def test_categories_declared_as_text_that_reads_as_numbers_match_the_csv(tmp_path):
    """Olympus declares amounts as categories named '6', '0.0025'; the CSV's 6 and 0.0025 are those choices."""
    path = _declared(tmp_path, "TYPE\n6,2,0.5,0.5,10\n0.0025,3,0.3,0.7,20\n")
    path.write_text(path.read_text().replace("choices: [1, 2, 3]", "choices: ['6', '12', '0.0025']"))
    pool = load_dataset(path)
    assert [p["ligand"] for p in pool_points(pool)] == ["6", "0.0025"]
    (tmp_path / "d.csv").write_text("TYPE\n7,2,0.5,0.5,10\n")
    with pytest.raises(SpecError, match=r"ligand: 7 is not one of \['6', '12', '0.0025'\]"):
        load_dataset(path)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("TYPE\n1,2,0.5,0.5\n", r"d\.csv:2: 4 field\(s\), but 5 column\(s\)"),
        ("TYPE\n1,2,0.5,0.5,1\n4,2,0.5,0.5,1\n", r"d\.csv:3: ligand: 4 is not one of \[1, 2, 3\]"),
        ("TYPE\n1,9,0.5,0.5,1\n", r"d\.csv:2: n: 9 is outside \[1, 5\]"),
        ("TYPE\n1,2,0.6,0.6,1\n", r"d\.csv:2: mix: components sum to 1\.2, must sum to 1"),
        ("TYPE\n", r"has no data rows"),
    ],
)
def test_rows_outside_a_declared_space_are_errors_at_their_line(tmp_path, rows, match):
    with pytest.raises(SpecError, match=match):
        load_dataset(_declared(tmp_path, rows))


def test_a_declared_space_must_name_the_inputs(tmp_path):
    path = _declared(tmp_path, "TYPE\n1,2,0.5,0.5,1\n")
    path.write_text(path.read_text().replace("inputs: [ligand, n, a, b]", "inputs: [ligand, n, a]"))
    with pytest.raises(SpecError, match=r"must be the inputs"):
        load_dataset(path)
    path.write_text(DECLARED.replace("TIES", "all").replace("total: 1}", "total: -1}"))
    with pytest.raises(SpecError, match=r"space\.mix\.total"):
        load_dataset(path)


def test_held_out_datasets_load_with_their_declared_spaces():
    held = [p for p in sorted(DATASETS.glob("*/dataset.yaml")) if load_dataset(p).spec.held_out]
    assert len(held) >= 22
    pools = {p.parent.name: load_dataset(p) for p in held}
    assert pools["photo_wf3"].space.root["composition"].type == "composition"
    assert {pools["buchwald_b"].space.root[n].type for n in pools["buchwald_b"].space.names} == {"categorical"}
    # the second held-out group: amounts coded as categories (lnp3), a 3,458-candidate categorical pool
    assert {pools["lnp3"].space.root[n].type for n in pools["lnp3"].space.names} == {"categorical"}
    assert (pools["lnp3"].n, pools["dye_lasers"].n) == (768, 3458)
    for pool in pools.values():
        assert pool.n_top >= math.ceil(0.05 * pool.n)
        assert (DATASETS / pool.spec.name / "SOURCE.md").exists()
    # the third group: another measurement of a categorical set, on the parent's own pool
    overlap = pools["dye_lasers_spectral_overlap"]
    assert overlap.spec.csv == "../dye_lasers/data.csv" and overlap.spec.objective.direction == "minimize"
    assert overlap.n == pools["dye_lasers"].n and overlap.top != pools["dye_lasers"].top
    assert "suzuki_i_turnover" not in pools  # Suzuki i's space chose the default's settings
    # the fourth group: a 3,696-candidate categorical pool, six-metal composition plates, and
    # Summit's file (its TYPE row skipped) with two categorical and three real variables
    edbo = pools["suzuki_edbo"]
    assert edbo.n == 3696 and {edbo.space.root[n].type for n in edbo.space.names} == {"categorical"}
    oer = pools["oer_plate_3496"].space.root["composition"]
    assert oer.type == "composition" and len(oer.components) == 6
    cn = pools["baumgartner_cn"]
    assert cn.n == 96 and [cn.space.root[n].type for n in cn.space.names] == ["categorical"] * 2 + ["real"] * 3


def _runs(label: str, cycles: list[int], n_top: int = 4) -> list[RunResult]:
    """Runs that find the top candidates one by one, reaching Top% 0.8 at the given cycle counts."""
    out = []
    for r, c in enumerate(cycles):
        counts = [0] * (c - 1) + [math.ceil(0.8 * n_top)] + [n_top]
        out.append(RunResult(planner=label, run=r, seed=0, top_count=counts, ask_seconds=0.0))
    return out


def test_compare_marks_differences_beyond_noise_and_ranks_planners():
    from labos.bench.compare import compare_dataset, markdown, rank_table

    fast = _runs("fast", [5, 6, 5, 7, 6, 5, 6, 5, 6, 7])
    slow = _runs("slow", [40, 45, 38, 50, 42, 41, 44, 39, 47, 43])
    noisy = _runs("noisy", [5, 40, 6, 45, 5, 38, 7, 50, 6, 41])
    c = compare_dataset({"fast": fast, "slow": slow, "noisy": noisy}, n=100, n_top=4, capped=False)
    assert c["metric"] == "af_0.8"
    assert math.isclose(c["planners"]["fast"]["value"], 80 / 6)
    assert c["planners"]["fast"]["lo"] <= c["planners"]["fast"]["value"] <= c["planners"]["fast"]["hi"]
    assert c["pairs"]["fast | slow"]["better"] == "fast"
    assert c["pairs"]["fast | noisy"]["better"] == "tie"  # half its runs are as slow as 'slow'
    assert [c["planners"][p]["rank"] for p in ("fast", "noisy", "slow")] == [1, 2, 3]
    same = compare_dataset({"a": fast, "b": _runs("b", [5, 6, 5, 7, 6, 5, 6, 5, 6, 7])}, 100, 4, capped=False)
    assert same["pairs"]["a | b"]["better"] == "tie" and same["planners"]["a"]["rank"] == 1.5
    ranks = rank_table({"d1": c, "d2": c}, ["fast", "slow", "noisy"])
    assert ranks["fast"]["median_rank"] == 1
    assert ranks["slow"]["against"]["fast"] == {"win": 0, "tie": 0, "loss": 2}
    text = markdown({"d1": c}, ranks, ["fast", "slow", "noisy"])
    assert "**best**" in text and "≈" in text and "| slow | 3 |" in text


def test_compare_at_a_cycle_cap_uses_top_found_by_the_cap(tmp_path):
    from labos.bench.compare import compare_dataset

    capped = [RunResult("p", r, 0, [0, 1, 1, 2], 0.0, capped=True) for r in range(4)]
    done = [RunResult("q", r, 0, [0, 1, 4], 0.0) for r in range(4)]  # found every top before the cap
    c = compare_dataset({"p": capped, "q": done}, n=500, n_top=4, capped=True)
    assert c["metric"] == "top_at_cap"
    assert (c["planners"]["p"]["value"], c["planners"]["q"]["value"]) == (0.5, 1.0)
    # every planner's median run reached Top% 0.8 before the cap: AF 0.8 tells them apart
    early = [RunResult("r", r, 0, [0, 4], 0.0) for r in range(4)]
    c = compare_dataset({"q": done, "r": early}, n=500, n_top=4, capped=True)
    assert c["metric"] == "af_0.8"
    assert (c["planners"]["q"]["value"], c["planners"]["r"]["value"]) == (400 / 3, 400 / 2)


def test_bench_compare_writes_the_tables_and_times_ask_and_tell(tmp_path):
    out = tmp_path / "out"
    code = main(
        [
            "bench",
            str(DATASETS / "suzuki_i" / "dataset.yaml"),
            "--planners",
            "skopt random",
            "--runs",
            "3",
            "--max-cycles",
            "8",
            "--jobs",
            "1",
            "--compare",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["versions"]["scikit-optimize"]
    assert summary["candidate_order"] == "shuffled"
    assert summary["datasets"]["suzuki_i"]["held_out"] is False  # a development set of the categorical kernel
    skopt = summary["datasets"]["suzuki_i"]["planners"]["skopt"]
    assert skopt["ask_tell_seconds_mean"] > skopt["ask_seconds_mean"] > 0  # skopt refits in tell
    assert skopt["wall_seconds_per_run"] > 0
    assert set(summary["compare"]["datasets"]["suzuki_i"]["planners"]) == {"skopt", "random"}
    assert "median rank" in (out / "compare.md").read_text()
    lines = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]  # written run by run
    assert sorted((x["planner"], x["run"]) for x in lines) == [(p, r) for p in ("random", "skopt") for r in range(3)]


def test_the_dataset_yaml_in_the_developers_guide_is_a_valid_declaration():
    import re

    import yaml

    from labos.bench.dataset import DatasetSpec
    from labos.core.space import SearchSpace

    text = (ROOT / "docs" / "planner-developers.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "columns:" in b)
    spec = DatasetSpec.model_validate(yaml.safe_load(block))
    assert sorted(SearchSpace.model_validate(spec.space).names) == sorted(spec.inputs)


def test_run_spread_shows_a_stuck_run_the_aggregate_hides():
    from labos.bench.protocol import run_spread

    quick = [RunResult("p", r, 0, [0] * 4 + [2, 4], 0.0) for r in range(19)]  # Top% 0.5 at cycle 5
    stuck = RunResult("p", 19, 0, [0] * 40, 0.0, capped=True)
    assert run_spread([*quick, stuck], n_top=4, level=0.5) == [5, 5, None]
    assert run_spread(quick, n_top=4, level=0.5) == [5, 5, 5]
