"""Bad days for the store: a full disk, two campaigns writing at once, a second process on one campaign."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa

import labos.data.db as db_module
from flows.campaign import resume_campaign, run_campaign
from labos.core.errors import StoreError
from labos.data.store import Store

pytestmark = pytest.mark.e2e


def test_a_full_disk_stops_the_campaign_cleanly_and_resume_finishes_it(small_spec, tmp_path, monkeypatch):
    """SQLite's own "database or disk is full" (a page cap), mid-campaign, then room again."""
    small_spec["budget"]["max_experiments"] = 12
    small_spec["planner"] = {"name": "random", "options": {}}
    real = db_module.make_engine

    def capped(url, read_only=False):
        engine = real(url, read_only)

        @sa.event.listens_for(engine, "connect")
        def _cap(dbapi, _record):
            dbapi.execute("PRAGMA max_page_count = 22")  # an empty store is 19 pages, 12 experiments 26

        return engine

    monkeypatch.setattr(db_module, "make_engine", capped)
    with pytest.raises(StoreError, match="database or disk is full"):
        run_campaign(small_spec, tmp_path, plot=False)
    monkeypatch.setattr(db_module, "make_engine", real)  # the disk has room again

    with sqlite3.connect(tmp_path / "labos.sqlite") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Store(tmp_path) as store:
        (campaign,) = store.campaigns()
        exps = store.experiments(campaign.id)
        assert 0 < len(exps) < 12
        for e in exps:  # whole records only
            assert e.params
            if e.status == "completed":
                assert e.objectives and e.metrics
    summary = resume_campaign(tmp_path, campaign.id, plot=False)
    assert summary.status == "completed" and summary.n_ok == 12


def test_two_campaigns_write_one_store_at_once(demo_spec, write_yaml, tmp_path, prefect_server):
    demo_spec["budget"]["max_experiments"] = 15
    demo_spec["planner"] = {"name": "random", "options": {}}
    paths = []
    for name in ("alpha", "beta"):
        demo_spec["name"] = name
        paths.append(write_yaml(demo_spec, f"{name}.yaml"))
    data = tmp_path / "shared"
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "labos.cli", "run", str(p), "--data-dir", str(data), "-q"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for p in paths
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-3000:]
        assert "database is locked" not in out and "Traceback" not in out
    with Store(data) as store:
        campaigns = store.campaigns()
        assert sorted(c.name for c in campaigns) == ["alpha", "beta"]
        for c in campaigns:
            assert c.status == "completed"
            assert [e.status for e in store.experiments(c.id)] == ["completed"] * 15
