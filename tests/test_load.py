"""Load and faults: campaigns of three users on one served facility, an instrument server and a campaign killed.

Runs ``benchmarks/load_faults.py`` (the scenario and its report) and checks what happened
against the instruments' own action logs (the world file) and the store, not against the
report alone.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from simulators.world import SampleBook

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_campaigns_share_a_faulty_facility_and_every_one_finishes_its_budget(tmp_path, prefect_server):
    out = tmp_path / "load"
    lease_s = 6.0  # above the longest heartbeat delay of six busy processes on two cores
    cmd = [sys.executable, str(ROOT / "benchmarks" / "load_faults.py"), str(out)]
    cmd += ["--campaigns", "6", "--budget", "3", "--lease-s", str(lease_s)]
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(done.stdout)  # the utilisation and share tables, for the record
    report = json.loads((out / "report.json").read_text())

    kinds = [e["what"] for e in report["events"]]
    assert kinds[:3] == ["instrument server killed", "instrument server restarted", "campaign process killed"]
    (kill,) = [e for e in report["events"] if e["what"] == "campaign process killed"]
    # nobody renews a dead process's leases: on this host they go at once, elsewhere within lease_s
    assert kill["lapse_s"] <= lease_s + 1.0

    book = SampleBook(out / "world.sqlite")
    try:
        actions = book.actions()
    finally:
        book.close()
    by_instrument = defaultdict(list)
    for a in actions:
        by_instrument[a.instrument].append(a)
    for name, acts in by_instrument.items():  # never two things at once, by the instrument's own log
        acts.sort(key=lambda a: a.wall_start)
        for a, b in itertools.pairwise(acts):
            assert b.wall_start >= a.wall_end - 1e-6, f"{name}: {a} overlaps {b}"
    samples = {a.sample for a in actions if a.instrument == "uvvis-1" and a.action == "measure"}

    assert report["reservations_left"] == 0
    for name, c in report["campaigns"].items():
        assert c["status"] == "completed", name
        assert len(c["experiments"]) == 3 and {e["status"] for e in c["experiments"]} <= {"completed", "failed"}
        for e in c["experiments"]:
            attempts = sorted((a for a in c["attempts"] if a["experiment_id"] == e["id"]), key=lambda a: a["n"])
            succeeded = [a for a in attempts if a["status"] == "succeeded"]
            assert len(succeeded) == (1 if e["status"] == "completed" else 0), (name, e, attempts)
            for a, b in itertools.pairwise(attempts):  # one at a time: never run twice at once
                assert b["started"] >= a["finished"], (a, b)
            for a in attempts:  # every failure with its cause
                if a["status"] != "succeeded":
                    assert a["cause"] and a["error"], a
            if e["status"] == "failed":
                assert e["cause"] and e["error"], e
            else:  # measured by the spectrometer, by its own log: not lost
                assert f"{e['id']}-a{succeeded[0]['n']}" in samples, e
