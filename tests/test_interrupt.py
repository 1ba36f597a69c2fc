"""A campaign process that is interrupted or killed leaves whole records and says so."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labos.cli import main
from labos.data.store import Store

pytestmark = pytest.mark.e2e


def n_results(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as c:
            sql = "SELECT COUNT(*) FROM experiments WHERE status IN ('completed','failed')"
            return int(c.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def start(path: Path, data: Path, prefect_home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)  # the campaign starts its own API server
    return subprocess.Popen(
        [sys.executable, "-m", "labos.cli", "run", str(path), "--data-dir", str(data), "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the Prefect server child goes with it
    )


def wait_for(db: Path, n: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while n_results(db) < n:
        if proc.poll() is not None:
            pytest.fail(f"campaign ended early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("campaign made no progress")
        time.sleep(0.1)


def test_ctrl_c_and_kill(demo_spec, write_yaml, tmp_path, capsys):
    demo_spec["simulation"]["acceleration"] = 3000.0  # about 0.3 s per experiment
    demo_spec["budget"]["max_experiments"] = 200
    demo_spec["planner"] = {"name": "random", "options": {}}
    path = write_yaml(demo_spec)
    data = tmp_path / "data"
    db = data / "labos.sqlite"
    home = tmp_path / "prefect"

    # Ctrl-C: the running experiment finishes and is recorded, then the campaign stops
    proc = start(path, data, home)
    try:
        wait_for(db, 2, proc)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        _kill_group(proc)
    assert proc.returncode == 130, err
    assert "stopping after the current experiment" in err
    assert "Traceback" not in err
    with Store(data) as store:
        (c1,) = store.campaigns()
        exps = store.experiments(c1.id)
    assert c1.status == "stopped" and c1.message == "interrupted by the user (SIGINT)"
    assert len([e for e in exps if e.status == "completed"]) >= 2
    assert all(e.status == "completed" for e in exps[:-1])
    assert exps[-1].status in ("completed", "proposed", "queued")  # kept for a resume, never half-run

    # SIGKILL: nothing to record on the way out, but records stay whole and show says what happened
    proc = start(path, data, home)
    try:
        c2 = None
        deadline = time.monotonic() + 120
        while c2 is None or len(experiments(data, c2.id)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
            campaigns = [c for c in _campaigns(data) if c.id != c1.id]
            c2 = campaigns[0] if campaigns else None
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        _kill_group(proc)
    with Store(data) as store:
        c2 = store.find_campaign(c2.id)
        exps = store.experiments(c2.id)
        assert c2.status == "running" and c2.effective_status == "interrupted"
        for e in exps:  # whole rows only: every result row has its objectives, every proposal its params
            assert e.params
            if e.status == "completed":
                assert e.objectives and e.metrics
    assert main(["show", c2.id, "--data-dir", str(data)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console may wrap long lines
    assert "interrupted (process" in out and f"labos resume {c2.id}" in out


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)  # reaps the process and closes its pipes


def _campaigns(data: Path):
    with Store(data) as store:
        return store.campaigns()


def experiments(data: Path, campaign_id: str):
    with Store(data) as store:
        return store.experiments(campaign_id)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_sigterm_stops_like_ctrl_c_and_closes_the_run(demo_spec, write_yaml, tmp_path):
    """``systemctl stop`` / ``docker stop``: the finding was an aborted experiment and a run without a stop document."""
    from labos.data.runs import RunCatalog

    demo_spec["simulation"]["acceleration"] = 3000.0
    demo_spec["budget"]["max_experiments"] = 200
    demo_spec["planner"] = {"name": "random", "options": {}}
    data = tmp_path / "data"
    proc = start(write_yaml(demo_spec), data, tmp_path / "prefect")
    try:
        wait_for(data / "labos.sqlite", 2, proc)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        _kill_group(proc)
    assert proc.returncode == 130, err
    assert "stopping after the current experiment" in err and "Traceback" not in err
    with Store(data) as store:
        (c,) = store.campaigns()
        exps = store.experiments(c.id)
    assert c.status == "stopped" and c.message == "interrupted by the user (SIGTERM)"
    assert all(e.status in ("completed", "measured", "proposed", "queued") for e in exps)
    with RunCatalog.open(data, c.id, create=False) as runs:
        starts = [md for _, md in runs.runs() if md["start"]["plan_name"] == "labos_experiment"]
    assert len(starts) >= 2 and all(md.get("stop") and md["stop"]["exit_status"] == "success" for md in starts)


def test_the_prefect_api_server_dies_with_a_killed_campaign(demo_spec, write_yaml, tmp_path):
    """kill -9 of the campaign process alone: with keep-alive 0 its API server must not live on (it did in 15 of 20)."""
    demo_spec["simulation"]["acceleration"] = 3000.0
    demo_spec["budget"]["max_experiments"] = 200
    data = tmp_path / "data"
    assert os.environ["LABOS_PREFECT_KEEP_ALIVE"] == "0"  # conftest's; the kept-alive case: test_prefect_home
    proc = start(write_yaml(demo_spec), data, tmp_path / "prefect")
    try:
        wait_for(data / "labos.sqlite", 1, proc)
        servers = [c for c in _children(proc.pid) if "prefect_server" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(servers) == 1, "the campaign runs its own Prefect API server"
        os.kill(proc.pid, signal.SIGKILL)  # the process only, as the OOM killer would
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(servers[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(servers[0]), "the API server outlived its campaign process"
    finally:
        _kill_group(proc)
