"""A lab, not a script: four furnaces busy at once, and two campaigns sharing one registered facility.

What happened is read from the simulated instruments' own logs (the world file's ``actions``
table, written by each instrument as it acts, whatever process it runs in), not from labos's
records: utilisation and double booking are checked independently of the code under test.
"""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from labos.cli import main
from labos.data.store import Store
from simulators.world import ActionRecord, SampleBook

ROOT = Path(__file__).resolve().parent.parent
LANES = yaml.safe_load((ROOT / "examples" / "lanes.yaml").read_text())
FURNACES = [f"furnace_{i}" for i in range(1, 5)]

pytestmark = pytest.mark.e2e


def spec_for(tmp_path: Path, name: str, world: Path, **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(LANES)
    spec["name"] = name
    spec["data_dir"] = str(tmp_path / "data")
    spec["planner"] = {"name": "random", "options": {}}
    spec["budget"] = {"max_experiments": 8}
    spec["simulation"] = {"landscape": "batio3-solid-state", "acceleration": 4000.0, "world": str(world)}
    spec.update(changes)
    return spec


def actions(world: Path) -> dict[str, list[ActionRecord]]:
    book = SampleBook(world)
    try:
        out: dict[str, list[ActionRecord]] = defaultdict(list)
        for a in book.actions():
            out[a.instrument].append(a)
        return out
    finally:
        book.close()


def double_bookings(log: dict[str, list[ActionRecord]]) -> list[str]:
    """Actions of one instrument that overlap in wall-clock time (one instrument doing two things at once)."""
    out = []
    for name, acts in log.items():
        acts = sorted(acts, key=lambda a: a.wall_start)
        for a, b in itertools.pairwise(acts):
            if b.wall_start < a.wall_end - 1e-6:
                until, since = f"{a.wall_end:.3f}", f"{b.wall_start:.3f}"
                out.append(f"{name}: {a.holder} {a.action} until {until}, {b.holder} {b.action} from {since}")
    return out


def most_at_once(acts: list[ActionRecord]) -> int:
    """The most of ``acts`` running at the same wall-clock moment."""
    edges = sorted([(a.wall_start, 1) for a in acts] + [(a.wall_end, -1) for a in acts])
    now = best = 0
    for _, d in edges:
        now += d
        best = max(best, now)
    return best


def test_four_furnaces_anneal_at_once_and_nothing_is_double_booked(tmp_path, write_yaml, capsys):
    world = tmp_path / "world.sqlite"
    spec = spec_for(tmp_path, "four-furnaces", world)
    # anneals (>= 7 simulated h, >= 12 s here) long against a synthesis (<= 20 min, 0.6 s) and the loop's
    # overheads, so that the four overlap however loaded the machine is
    spec["simulation"]["acceleration"] = 2000.0
    spec["space"]["dwell"] = {"type": "real", "low": 300, "high": 600, "unit": "min"}
    spec["space"]["milling_time"] = {"type": "real", "low": 5, "high": 20, "unit": "min"}
    assert main(["run", str(write_yaml(spec)), "-q"]) == 0
    log = actions(world)
    anneals = [a for name in FURNACES for a in log.get(name, []) if a.action == "anneal"]
    assert len(anneals) == 8 and {a.instrument for a in anneals} == set(FURNACES)
    assert most_at_once(anneals) == 4, "the four furnaces never annealed at the same time"
    assert double_bookings(log) == []
    with Store(tmp_path / "data") as store:
        (rec,) = store.campaigns()
        exps = store.experiments(rec.id)
        assert [e.status for e in exps] == ["completed"] * 8
        by_attempt = {a.experiment_id: a.instruments for a in store.attempts(rec.id)}
    for a in anneals:  # labos's record of who ran where agrees with the furnaces' own
        assert a.instrument in by_attempt[a.holder]
    assert main(["show", rec.id, "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "instruments" in out and all(name in out for name in FURNACES)


def register_facility(data: Path, world: Path) -> None:
    """Four furnaces in the registry of ``data``'s store (simulated, in the shared world)."""
    for i in range(1, 5):
        entry = {"name": f"furnace-{i}", "kind": "furnace", "driver": "sim", "owner": "Furnace team <f@example.org>"}
        path = data.parent / f"furnace-{i}.yaml"
        path.write_text(yaml.safe_dump(entry))
        assert main(["instruments", "add", str(path), "--data-dir", str(data)]) == 0


def test_two_campaigns_share_the_registered_furnaces_without_double_booking(tmp_path, write_yaml, prefect_server):
    world = tmp_path / "world.sqlite"
    data = tmp_path / "data"
    data.mkdir()
    register_facility(data, world)
    procs = []
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    for name, priority in (("alpha", 0), ("beta", 5)):
        spec = spec_for(tmp_path, name, world, priority=priority)
        for i in range(1, 5):
            spec["workflow"]["instruments"][f"furnace_{i}"] = {
                "kind": "furnace",
                "driver": "registry",
                "options": {"name": f"furnace-{i}"},
            }
        cmd = [sys.executable, "-m", "labos.cli", "run", str(write_yaml(spec, f"{name}.yaml")), "-q"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    log = actions(world)
    assert double_bookings(log) == []  # across the two processes, by the instruments' own record
    holders = {a.holder.rsplit("-", 2)[0] for name in FURNACES for a in log.get(name, []) if a.holder}
    assert len(holders) == 2  # both campaigns used the shared furnaces
    with Store(data) as store:
        for rec in store.campaigns():
            assert rec.status == "completed"
            assert [e.status for e in store.experiments(rec.id)] == ["completed"] * 8
            assert not any(e["kind"] == "park failed" for e in store.events(rec.id))
        assert store.query("SELECT COUNT(*) FROM reservations")[0][0] == 0  # every lease given back


def test_an_operator_disables_a_busy_furnace_and_its_work_goes_to_another(tmp_path, write_yaml, prefect_server):
    import time

    world = tmp_path / "world.sqlite"
    data = tmp_path / "data"
    data.mkdir()
    register_facility(data, world)
    spec = spec_for(tmp_path, "maintenance", world)
    spec["simulation"]["acceleration"] = 1500.0  # anneals of several seconds: time to disable one mid-way
    for i in range(1, 5):
        spec["workflow"]["instruments"][f"furnace_{i}"] = {
            "kind": "furnace",
            "driver": "registry",
            "options": {"name": f"furnace-{i}"},
        }
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "LABOS_LEASE_S": "3"}
    cmd = [sys.executable, "-m", "labos.cli", "run", str(write_yaml(spec)), "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        with Store(data) as store:
            while not store.query("SELECT 1 FROM reservations WHERE resource='registry:furnace-1'"):
                assert proc.poll() is None and time.monotonic() < deadline, "furnace-1 was never used"
                time.sleep(0.05)
        disabled_at = time.time()
        assert (
            main(
                ["instruments", "disable", "furnace-1", "--reason", "thermocouple", "--abort", "--data-dir", str(data)]
            )
            == 0
        )
        out = proc.communicate(timeout=400)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    with Store(data) as store:
        (rec,) = store.campaigns()
        exps = store.experiments(rec.id)
        attempts = store.attempts(rec.id)
    assert [e.status for e in exps] == ["completed"] * 8  # the aborted one was retried, elsewhere
    aborted = [a for a in attempts if a.error and "disabled by" in a.error and "thermocouple" in a.error]
    assert len(aborted) == 1 and aborted[0].cause == "instrument"
    retry = next(a for a in attempts if a.experiment_id == aborted[0].experiment_id and a.n == aborted[0].n + 1)
    assert "furnace_1" not in (retry.instruments or []) and retry.status == "succeeded"
    log = actions(world)
    late = [a for a in log.get("furnace_1", []) if a.wall_start > disabled_at + 2.5]  # the holder looks every second
    assert late == []  # nothing new started on the disabled furnace, by its own log
