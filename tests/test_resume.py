"""Resuming a campaign: the same outcome as never stopping, policies, software errors, locks."""

from __future__ import annotations

import copy

import pytest
import yaml

from flows.campaign import resume_campaign, run_campaign
from labos.cli import main
from labos.core.campaign import Campaign
from labos.data.lock import CampaignBusy, CampaignLock
from labos.data.store import Store
from labos.session import CampaignSession

pytestmark = pytest.mark.e2e


def drive(session: CampaignSession, until_completed: int) -> None:
    """Do the loop's steps by hand until ``until_completed`` experiments are completed."""
    while sum(r.status == "completed" for r in session.records()) < until_completed:
        step = session.next_step()
        assert step.kind in ("analyse", "queue", "run", "tell", "propose"), step
        if step.kind == "propose":
            session.propose(step.n)
        elif step.kind == "tell":
            session.tell()
        else:
            assert step.experiment_id is not None
            getattr(session, step.kind)(step.experiment_id)


def outcomes(store_path, campaign_id):
    with Store(store_path) as store:
        return [(e.seq, e.params, e.status, e.objectives) for e in store.experiments(campaign_id)]


@pytest.mark.parametrize(
    ("planner", "stop_after"),
    [({"name": "skopt", "options": {"n_initial_points": 3}}, 4), ({"name": "botorch", "options": {}}, 6)],
)
def test_a_resumed_campaign_proposes_and_measures_what_an_uninterrupted_one_would(
    small_spec, tmp_path, planner, stop_after
):
    """Killed between experiments (the session dropped without finishing), then resumed.

    The planner is restored from the store and the simulated noise is keyed by experiment
    and attempt, so every later proposal and every measurement equals the uninterrupted run.
    """
    small_spec["budget"]["max_experiments"] = 8
    small_spec["planner"] = planner
    whole = run_campaign(copy.deepcopy(small_spec), tmp_path / "whole", plot=False)
    assert whole.status == "completed"

    campaign = Campaign.model_validate(small_spec)
    session = CampaignSession.create(campaign, tmp_path / "cut")
    drive(session, stop_after)
    cut_id = session.id
    session.close()  # as if the process died here: status stays "running", no finish written
    with Store(tmp_path / "cut") as store:
        assert store.find_campaign(cut_id).status == "running"
    resumed = resume_campaign(tmp_path / "cut", cut_id, plot=False)
    assert resumed.status == "completed" and resumed.campaign_id == cut_id
    assert outcomes(tmp_path / "cut", cut_id) == outcomes(tmp_path / "whole", whole.campaign_id)
    assert resumed.best_value == whole.best_value
    with Store(tmp_path / "cut") as store:
        kinds = [e["kind"] for e in store.events(cut_id)]
        assert kinds.count("campaign_resumed") == 1 and kinds.count("recovered") == 1
        assert len(store.find_campaign(cut_id).provenance["resumes"]) == 1


def test_an_experiment_running_at_the_crash_is_rerun_or_failed_by_policy(small_spec, tmp_path):
    small_spec["budget"]["max_experiments"] = 4
    small_spec["planner"] = {"name": "random", "options": {}}
    for policy, expected in (("rerun", "completed"), ("fail", "failed")):
        small_spec["workflow"]["on_interrupted"] = policy
        data = tmp_path / policy
        session = CampaignSession.create(Campaign.model_validate(small_spec), data)
        drive(session, 2)
        session.queue(session.propose(1)[0])
        (eid,) = [r.id for r in session.records() if r.status == "queued"]
        attempt = session.store.start_attempt(eid)  # the process dies right after writing "running"
        session.close()
        summary = resume_campaign(data, session.id, plot=False)
        assert summary.status == "completed"
        with Store(data) as store:
            e = store.experiment(eid)
            attempts = [a for a in store.attempts(session.id) if a.experiment_id == eid]
            told = [r.id for r in store.experiments(session.id) if r.told]
        assert attempt == 1 and attempts[0].status == "interrupted" and attempts[0].cause == "interrupted"
        assert e.status == expected
        if policy == "rerun":  # a new attempt of the same experiment, with its own sample and noise
            assert e.attempts == 2 and attempts[1].status == "succeeded"
        else:
            assert e.attempts == 1 and e.cause == "interrupted" and "ended before it finished" in e.error
        assert eid in told  # either way the planner learns the outcome
        assert summary.n_ok + summary.n_failed == 4


def test_a_software_error_stops_the_campaign_is_not_told_and_resume_replaces_it(small_spec, tmp_path, monkeypatch):
    from simulators.synthesizer import SimSynthesizer

    small_spec["budget"]["max_experiments"] = 5
    small_spec["planner"] = {"name": "random", "options": {}}
    real = SimSynthesizer.synthesize
    calls = {"n": 0}

    def buggy(self, sample_id, recipe):
        calls["n"] += 1
        if calls["n"] == 3:
            return {"not": "a report"}["report"]  # a KeyError: a bug in the driver, not a device fault
        return real(self, sample_id, recipe)

    monkeypatch.setattr(SimSynthesizer, "synthesize", buggy)
    summary = run_campaign(small_spec, tmp_path, plot=False)
    assert summary.status == "failed"
    assert "software error, not an instrument fault: KeyError: 'report'" in summary.message
    with Store(tmp_path) as store:
        exps = store.experiments(summary.campaign_id)
    bad = exps[2]
    assert (bad.status, bad.cause, bad.told) == ("failed", "software", False)
    assert bad.traceback and "KeyError" in bad.traceback and "buggy" in bad.traceback
    assert [e.status for e in exps] == ["completed", "completed", "failed"]  # nothing ran after it

    monkeypatch.setattr(SimSynthesizer, "synthesize", real)  # the bug is fixed
    resumed = resume_campaign(tmp_path, summary.campaign_id, plot=False)
    assert resumed.status == "completed" and resumed.n_ok == 5  # the lost experiment did not use the budget
    with Store(tmp_path) as store:
        exps = store.experiments(summary.campaign_id)
        state = store.planner_state(summary.campaign_id)
    told = [o for entry in state["journal"] if entry["op"] == "tell" for o in entry["observations"]]
    assert len(told) == 5 and all(o["status"] == "ok" for o in told)
    assert len(exps) == 6 and exps[2].status == "failed"


def test_a_campaign_running_elsewhere_is_not_resumed(small_spec, tmp_path, capsys):
    small_spec["budget"]["max_experiments"] = 2
    session = CampaignSession.create(Campaign.model_validate(small_spec), tmp_path)
    other = CampaignLock(tmp_path, session.id)
    with pytest.raises(CampaignBusy, match="already running"):
        other.acquire()
    assert other.held_elsewhere()
    assert main(["resume", session.id, "--data-dir", str(tmp_path)]) == 2
    assert f"campaign {session.id} is already running (pid " in capsys.readouterr().err
    session.close()
    assert not other.held_elsewhere()
    assert main(["resume", "nobody", "--data-dir", str(tmp_path)]) == 2
    assert "no campaign 'nobody'" in capsys.readouterr().err


def test_cli_resume_and_run_resume(small_spec, write_yaml, tmp_path, capsys):
    small_spec["budget"]["max_experiments"] = 3
    small_spec["planner"] = {"name": "random", "options": {}}
    data = tmp_path / "data"
    session = CampaignSession.create(Campaign.model_validate(small_spec), data)
    drive(session, 1)
    session.close()
    path = write_yaml(small_spec)
    assert main(["run", str(path), "--resume", "--data-dir", str(data), "-q"]) == 0
    captured = capsys.readouterr()
    assert f"resuming campaign {session.id}" in captured.err
    assert "completed - 3 ok, 0 failed" in captured.out
    assert main(["resume", session.id, "--data-dir", str(data)]) == 2
    assert "has completed: there is nothing to resume" in capsys.readouterr().err

    again = CampaignSession.create(Campaign.model_validate(small_spec), data)
    again.close()
    changed = yaml.safe_load(path.read_text())
    changed["budget"]["max_experiments"] = 9
    assert main(["run", str(write_yaml(changed)), "--resume", "--data-dir", str(data), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"differs from campaign {again.id} as it was started (changed: budget)" in err


def test_a_campaign_on_postgresql_runs_stops_and_resumes(small_spec, tmp_path, monkeypatch, postgres_url, capsys):
    """The same loop with ``LABOS_STORE_URL`` pointing at a real PostgreSQL server."""
    monkeypatch.setenv("LABOS_STORE_URL", postgres_url)
    small_spec["budget"]["max_experiments"] = 5
    small_spec["planner"] = {"name": "skopt", "options": {"n_initial_points": 3}}
    session = CampaignSession.create(Campaign.model_validate(small_spec), tmp_path)
    assert session.store.db.dialect == "postgresql" and not (tmp_path / "labos.sqlite").exists()
    drive(session, 2)
    session.queue(session.propose(1)[0])
    session.store.start_attempt(session.records()[-1].id)  # killed while it ran
    session.close()
    summary = resume_campaign(tmp_path, session.id, plot=False)
    assert summary.status == "completed" and summary.n_ok == 5 and summary.store == postgres_url
    with Store(postgres_url) as store:
        attempts = store.attempts(session.id)
        assert [a.status for a in attempts if a.experiment_id.endswith("0003")] == ["interrupted", "succeeded"]
        assert store.find_campaign(session.id).status == "completed"
    assert main(["show", session.id]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "best: #" in out


def test_labos_stop_from_another_process_stops_between_experiments(demo_spec, write_yaml, tmp_path, prefect_server):
    import os
    import subprocess
    import sys
    import time

    demo_spec["budget"]["max_experiments"] = 200
    demo_spec["simulation"]["acceleration"] = 3000.0
    demo_spec["planner"] = {"name": "random", "options": {}}
    data = tmp_path / "data"
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    cmd = [sys.executable, "-m", "labos.cli", "run", str(write_yaml(demo_spec)), "--data-dir", str(data), "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            if (data / "labos.sqlite").exists():
                with Store(data) as store:
                    c = store.campaigns()
                    if c and sum(e.status == "completed" for e in store.experiments(c[0].id)) >= 2:
                        break
            time.sleep(0.2)
        assert main(["stop", c[0].id, "--data-dir", str(data), "--reason", "lamp change"]) == 0
        out = proc.communicate(timeout=120)[0]
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, out  # stopped, not completed: its record is kept
    with Store(data) as store:
        rec = store.find_campaign(c[0].id)
        exps = store.experiments(rec.id)
    assert rec.status == "stopped" and rec.message == "lamp change"
    assert not [e for e in exps if e.status in ("running", "measured")]
    assert 2 <= len(exps) < 200
    assert main(["stop", rec.id, "--data-dir", str(data)]) == 2  # not running any more
