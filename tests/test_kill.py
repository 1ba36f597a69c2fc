"""kill -9 at random moments, resume each time: nothing completed is lost, nothing runs twice.

A real campaign runs as a subprocess (``labos run FILE --resume``, reporting to a real
Prefect server) and is killed with SIGKILL, its whole process group with it, at random
moments: during start-up, in the middle of an experiment's plan (while its documents
and transitions are being written) and between experiments. After every kill the store
is recovered as ``labos resume`` recovers it and the invariants are checked; the next
process resumes. At the end the campaign is let run to its budget.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from labos.data.recovery import recover_campaign
from labos.data.runs import RunCatalog, journal_dir
from labos.data.store import Store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KILLS = 15
REASON = "the process running this experiment ended before it finished (closed on resume)"


def start(path: Path, data: Path, api_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "labos.cli", "run", str(path), "--resume", "--data-dir", str(data), "-q"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes everything it started
        )


def moment(data: Path, since: float) -> str:
    """What the killed process was doing: starting up, running an experiment, or in between."""
    db = data / "labos.sqlite"
    if not db.exists():
        return "start-up"
    with sqlite3.connect(db, timeout=30) as c:
        try:
            # an attempt this process started and left running (one left by an earlier process does not count)
            sql = "SELECT COUNT(*) FROM attempts WHERE status='running' AND started >= ?"
            running = c.execute(sql, (since,)).fetchone()[0]
        except sqlite3.OperationalError:  # killed while creating the tables
            return "start-up"
    if running:
        return "mid-experiment"
    return "between experiments" if ran_since(data, since) else "start-up"


def wait_for(data: Path, since: float, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Poll the store until an attempt of the process started at ``since`` is ``running`` (or has ``ended``)."""
    sql = {
        "running": "SELECT COUNT(*) FROM attempts WHERE status='running' AND started >= ?",
        "ended": "SELECT COUNT(*) FROM attempts WHERE finished IS NOT NULL AND started >= ?",
    }[what]
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if (data / "labos.sqlite").exists():
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(data / "labos.sqlite", timeout=30) as c:
                if c.execute(sql, (since,)).fetchone()[0]:
                    return
        time.sleep(0.01)


def ran_since(data: Path, since: float) -> bool:
    """Whether a process started since ``since`` got as far as starting a run."""
    if not (data / "labos.sqlite").exists():  # connecting would create it
        return False
    with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(data / "labos.sqlite", timeout=30) as c:
        sql = "SELECT COUNT(*) FROM events WHERE kind='attempt_started' AND time >= ?"
        return bool(c.execute(sql, (since,)).fetchone()[0])
    return False


def check(data: Path, before: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Recover as a resume does, check every invariant, and return the completed experiments."""
    db = data / "labos.sqlite"
    if not db.exists():
        return {}
    with sqlite3.connect(db, timeout=30) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    completed: dict[str, dict[str, Any]] = {}
    with Store(data) as store:
        for campaign in store.campaigns():
            catalog = data / "tiled" / campaign.id / "catalog.db"
            if catalog.exists():
                with sqlite3.connect(catalog, timeout=30) as c:
                    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            with RunCatalog.open(data, campaign.id) as runs:
                journal = journal_dir(data, campaign.id)  # runs begun before tiled had opened in their process
                recover_campaign(store, lambda runs=runs: runs, campaign.id, "rerun", REASON, journal)
                in_tiled = dict(runs.runs())
            exps = store.experiments(campaign.id)
            attempts = store.attempts(campaign.id)
            assert [e.seq for e in exps] == list(range(1, len(exps) + 1))
            assert not [e.id for e in exps if e.status == "running"]
            assert not [a for a in attempts if a.status == "running"]
            by_exp = collections.defaultdict(list)
            for a in attempts:
                by_exp[a.experiment_id].append(a)
            for e in exps:
                succeeded = [a for a in by_exp[e.id] if a.status == "succeeded"]
                assert len(succeeded) <= 1, f"{e.id} measured twice"
                assert len(by_exp[e.id]) == e.attempts
                if e.status == "completed":
                    assert succeeded and succeeded[0].n == e.attempts  # nothing ran after it was measured
                    assert e.objectives and e.metrics
                    completed[e.id] = e.objectives
            for eid, objectives in before.items():
                if eid.startswith(campaign.id):
                    assert eid in completed, f"{eid} was completed before the kill and is not now"
                    assert completed[eid] == objectives
            # tiled keys runs by uid (one start each); each must be closed, and every recorded run be there
            assert all(md.get("stop") for md in in_tiled.values()), "a Bluesky run without a stop document"
            recorded = {uid for e in exps for uid in e.run_uids} | {a.run_uid for a in attempts if a.run_uid}
            assert recorded <= set(in_tiled), "an experiment names a run that is not in tiled"
            state = store.planner_state(campaign.id) or {"journal": []}
            told = sum(len(j["observations"]) for j in state["journal"] if j["op"] == "tell")
            assert told == sum(e.told for e in exps), "planner state and told flags disagree"
            asked = sum(j["n"] for j in state["journal"] if j["op"] == "ask")
            assert asked == len(exps), "planner state and proposals disagree"
    return completed


def test_sigkill_at_random_moments_then_resume(demo_spec, write_yaml, tmp_path, prefect_server):
    demo_spec["budget"]["max_experiments"] = 40
    demo_spec["planner"] = {"name": "sobol", "options": {}}
    demo_spec["simulation"]["acceleration"] = 3000.0  # about 0.3 s of wall time per experiment
    demo_spec["simulation"]["fault_rate"] = 0.05  # some retries and failures in the record too
    demo_spec["workflow"]["retries"] = 1
    path = write_yaml(demo_spec)
    data = tmp_path / "data"
    log = tmp_path / "runs.log"
    rng = random.Random(20261202)
    startup = 6.0  # refined as processes run: upper-quartile seconds until a process starts its first run
    startups: list[float] = []
    moments: collections.Counter[str] = collections.Counter()
    completed: dict[str, dict[str, Any]] = {}
    finished_campaigns = 0
    phases = ("start-up", "mid-experiment", "between experiments")
    while sum(moments.values()) < KILLS or (min(moments[p] for p in phases) < 3 and sum(moments.values()) < 40):
        t0 = time.time()
        proc = start(path, data, prefect_server, log)
        # a third of the kills aimed at each moment: start-up (a random delay), mid-experiment (an
        # attempt of this process running) and between experiments (one of its attempts just ended)
        aim = phases[sum(moments.values()) % 3] if rng.random() < 0.8 else rng.choice(phases)
        if aim == "start-up":
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=rng.uniform(0.2, startup))
        else:
            wait_for(data, t0, proc, "running" if aim == "mid-experiment" else "ended", timeout=startup + 60)
            time.sleep(rng.uniform(0.0, 0.4) if aim == "mid-experiment" else rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            moments[moment(data, t0)] += 1  # what it was really doing when it died
        else:  # the campaign reached its budget before the kill: the next process starts a new one
            assert proc.returncode == 0, log.read_text()[-3000:]
            finished_campaigns += 1
        if (data / "labos.sqlite").exists():  # when did this process start its first run?
            began = None
            with sqlite3.connect(data / "labos.sqlite", timeout=30) as c:
                sql = "SELECT MIN(time) FROM events WHERE kind='attempt_started' AND time >= ?"
                with contextlib.suppress(sqlite3.OperationalError):  # killed before its first commit: no tables
                    began = c.execute(sql, (t0,)).fetchone()[0]
            if began is not None:
                startups.append(began - t0)
                startup = sorted(startups)[(3 * len(startups)) // 4]  # a loud machine spreads start-ups widely
        completed = check(data, completed)

    proc = start(path, data, prefect_server, log)  # and now let it finish
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    completed = check(data, completed)
    with Store(data) as store:
        campaigns = store.campaigns()
        assert {c.status for c in campaigns} == {"completed"}
        last = campaigns[-1]
        exps = store.experiments(last.id)
        assert sum(e.status in ("completed", "failed") for e in exps) == 40
        resumes = sum(len(c.provenance.get("resumes", [])) for c in campaigns)
    report = dict(moments) | {
        "kills": sum(moments.values()),
        "resumes": resumes,
        "campaigns": len(campaigns),
        "completed experiments": len(completed),
        "median start-up s": round(startup, 1),
    }
    print(f"\nkill -9 report: {report}")
    assert sum(moments.values()) >= KILLS
    assert min(moments[p] for p in phases) >= 3, report
