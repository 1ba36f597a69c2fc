"""End-to-end: Prefect flow -> planner -> RunEngine -> simulated instruments -> SQLite."""

from __future__ import annotations

import math
import statistics

import pytest
import yaml

from flows.campaign import run_campaign
from labos.analysis.registry import analyse
from labos.cli import main
from labos.core.campaign import Campaign
from labos.data.documents import RunReadings
from labos.data.runs import RunCatalog
from labos.data.store import Store
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.e2e


def run(spec, **kw):
    return run_campaign(spec, data_dir=spec["data_dir"], **kw)


def test_demo_campaign_records_everything(demo_spec):
    demo_spec["budget"]["max_experiments"] = 10
    summary = run(demo_spec)
    assert summary.status == "completed" and summary.n_ok == 10 and summary.n_failed == 0
    assert summary.best_value is not None and summary.best_value < 0.1
    assert summary.plot is not None and summary.plot.read_bytes()[:4] == b"\x89PNG"

    space = Campaign.model_validate(demo_spec).space
    with Store(summary.store) as store, RunCatalog.open(demo_spec["data_dir"], summary.campaign_id) as runs:
        exps = store.experiments(summary.campaign_id)
        assert len(exps) == 10 and all(e.status == "completed" for e in exps)
        for e in exps:
            assert space.problems(e.params) == []
            assert e.instrument_time_s > 60  # simulated instrument time, though the test took milliseconds
            (uid,) = e.run_uids
            docs = runs.documents(uid)
            names = [n for n, _ in docs]
            assert names[0] == "start" and names[-1] == "stop"
            assert names.count("descriptor") == 2 and names.count("event") == 2
            start = docs[0][1]
            assert start["experiment_id"] == e.id and start["campaign_id"] == summary.campaign_id
            assert start["parameters"] == e.params and start["planner"] == "skopt"
            # the objective is derived from the recorded spectrum: analysing the stored events again gives it
            readings = RunReadings.of(docs).readings
            assert len(readings["uvvis"][0]["uvvis_absorbance"]) == 501
            again = analyse("uvvis", "uvvis", readings["uvvis"])
            assert again["band_gap_eV"] == e.metrics["band_gap_eV"]
            assert e.objectives["gap_error"] == pytest.approx(abs(again["band_gap_eV"] - 2.10))
        kinds = [ev["kind"] for ev in store.events(summary.campaign_id)]
        assert kinds[0] == "campaign_started" and kinds[-1] == "campaign_finished"
        assert kinds.count("proposed") == 10 and kinds.count("told") == 10
        moves = [ev["payload"]["to"] for ev in store.events(summary.campaign_id) if ev["kind"] == "transition"]
        assert moves == ["queued", "running", "measured", "completed"] * 10
        assert store.find_campaign(summary.campaign_id).status == "completed"


def test_skopt_beats_random_search_on_the_seeded_landscape(small_spec):
    """Geometric mean, over ten seeded campaigns of 15 experiments, of the best gap error.

    Seeds 0-9 are simply the first ten; on this landscape skopt (EI) reaches about 0.4
    of random search's error (0.010 vs 0.024 eV). Five seeds were too few: with the
    noise keyed by experiment (not a running generator) seeds 0-4 gave 0.015 vs 0.016.
    """
    small_spec["budget"]["max_experiments"] = 15
    best = {}
    for name, options in (("skopt", {"n_initial_points": 6}), ("random", {})):
        logs = []
        for seed in range(10):
            spec = {**small_spec, "seed": seed, "planner": {"name": name, "options": options}}
            logs.append(math.log(run(spec, plot=False).best_value))
        best[name] = math.exp(statistics.mean(logs))
    assert best["skopt"] < 0.6 * best["random"], best


def test_transient_faults_are_retried_and_recorded(demo_spec):
    demo_spec["budget"]["max_experiments"] = 8
    demo_spec["simulation"]["fault_rate"] = 0.2
    demo_spec["workflow"]["retries"] = 3
    summary = run(demo_spec, plot=False)
    assert summary.status == "completed"
    with Store(summary.store) as store, RunCatalog.open(demo_spec["data_dir"], summary.campaign_id) as runs:
        exps = store.experiments(summary.campaign_id)
        events = store.events(summary.campaign_id)
        in_tiled = dict(runs.runs())
    assert len(exps) == 8
    # every attempt's run is in tiled, the failed ones too, each closed with its exit status
    assert set(in_tiled) == {uid for e in exps for uid in e.run_uids}
    assert {md["stop"]["exit_status"] for md in in_tiled.values()} == {"success", "fail"}
    retried = [e for e in exps if e.attempts > 1]
    assert retried, "with a 20% fault rate per action some experiment must have been retried"
    for e in retried:
        assert len(e.run_uids) == e.attempts  # every attempt is its own Bluesky run, kept
    with Store(summary.store) as store:
        failures = [a for a in store.attempts(summary.campaign_id) if a.status == "failed"]
    assert failures and all(
        "(simulated needle)" in (a.error or "")
        or "(simulated stirrer)" in (a.error or "")
        or "(simulated changer)" in (a.error or "")
        for a in failures
    )
    assert {a.cause for a in failures} == {"instrument"}
    assert {ev["kind"] for ev in events} >= {"attempt_started", "transition", "told"}


def test_persistent_faults_stop_the_campaign_with_a_record(demo_spec):
    demo_spec["budget"] = {"max_experiments": 12, "max_consecutive_failures": 2}
    demo_spec["workflow"]["instruments"]["synth"]["options"] = {"reservoir_ml": 2.5}
    summary = run(demo_spec, plot=False)
    assert summary.status == "stopped"
    assert "2 experiments failed in a row" in summary.message and "is empty" in summary.message
    with Store(summary.store) as store, RunCatalog.open(demo_spec["data_dir"], summary.campaign_id) as runs:
        exps = store.experiments(summary.campaign_id)
        assert store.find_campaign(summary.campaign_id).status == "stopped"
        failed_run = dict(runs.runs())[exps[-1].run_uids[-1]]
    assert failed_run["stop"]["exit_status"] == "fail" and failed_run["stop"]["reason"]  # bluesky's own reason
    assert exps[-1].status == "failed" and "reservoir" in exps[-1].error
    assert all(e.status in ("completed", "failed") for e in exps)
    assert {e.cause for e in exps if e.status == "failed"} == {"instrument"}


def test_cli_run_show_and_errors(demo_spec, write_yaml, capsys, tmp_path):
    path = write_yaml(demo_spec)
    data = tmp_path / "cli-data"
    assert main(["run", str(path), "--data-dir", str(data), "--max-experiments", "4", "-q"]) == 0
    out = capsys.readouterr().out
    assert "perovskite-bandgap-demo: completed - 4 ok, 0 failed" in out
    assert "best gap_error (minimize):" in out and "convergence.png" in out

    assert main(["show", "perovskite-bandgap-demo", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "best: #" in out and "gap_error" in out

    assert main(["show", "--data-dir", str(data)]) == 0
    assert "perovskite-bandgap-demo" in capsys.readouterr().out

    assert main(["show", "nope", "--data-dir", str(data)]) == 2
    assert "no campaign 'nope'" in capsys.readouterr().err
    assert main(["show", "x", "--data-dir", str(tmp_path / "empty")]) == 2
    assert "no labos store" in capsys.readouterr().err
    assert main(["run", str(path), "--planner", "bayes", "--data-dir", str(data)]) == 2
    assert "unknown planner 'bayes'" in capsys.readouterr().err


def test_batches_of_proposals(demo_spec):
    demo_spec["budget"] = {"max_experiments": 7, "batch_size": 3}
    demo_spec["planner"] = {"name": "botorch", "options": {"n_initial_points": 3}}
    summary = run(demo_spec, plot=False)
    assert summary.n_ok == 7
    with Store(summary.store) as store:
        told = [len(ev["payload"]["experiments"]) for ev in store.events(summary.campaign_id) if ev["kind"] == "told"]
    assert told == [3, 3, 1]  # the last batch is cut to the budget


def test_two_objectives_report_a_pareto_front(write_yaml, tmp_path, capsys):
    spec = yaml.safe_load((EXAMPLES / "two-objectives.yaml").read_text())
    spec["budget"]["max_experiments"] = 7
    spec["planner"]["options"]["n_initial_points"] = 4
    spec["simulation"]["acceleration"] = float("inf")
    spec["data_dir"] = str(tmp_path / "data")
    summary = run(spec)
    assert summary.status == "completed" and summary.n_ok == 7
    front = [(o.objectives["gap_error"], o.objectives["absorbance"]) for o in summary.pareto]
    with Store(summary.store) as store:
        measured = [
            (e.objectives["gap_error"], e.objectives["absorbance"])
            for e in store.experiments(summary.campaign_id)
            if e.objectives
        ]

    def dominates(b: tuple[float, float], a: tuple[float, float]) -> bool:  # gap_error down, absorbance up
        return b[0] <= a[0] and b[1] >= a[1] and b != a

    assert front and set(front) <= set(measured)
    for a in measured:  # the front is exactly the measured points no measured point dominates
        assert (a in front) == (not any(dominates(b, a) for b in measured))
    assert main(["run", str(write_yaml(spec)), "--data-dir", str(tmp_path / "cli")]) == 0
    assert "Pareto front" in capsys.readouterr().out
