"""State that scales: what the planner's state costs as a campaign grows to thousands of experiments.

Usage: ``.venv/bin/python benchmarks/state_scaling.py [--sizes 100,500,2000] [--planner random]``

A campaign of the demo's space is driven through the store the way a session drives it
(``ask`` one experiment, record it with the planner's state in the same transaction,
complete it with a synthetic objective, ``tell`` and record the state again), without
instruments, so that only the state's costs are measured. At each size it reports:

- bytes written per experiment (growth of the SQLite store, WAL checkpointed, over the
  last tenth of the experiments);
- ``ask`` and ``tell`` seconds per call over that last tenth (the planner's own work plus
  serialising its state);
- resume seconds: reading the stored state back and restoring the planner from it.

Prints a markdown table. Ratios between sizes are the figures: machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def store_bytes(store: Any, path: Path) -> int:
    """The SQLite store's size on disk once its WAL is checkpointed."""
    with store.transaction() as c:
        c.execute("SELECT 1")
    store.db.engine.dispose()
    import sqlite3

    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))


def run(planner_name: str, n: int, data: Path) -> dict[str, float]:
    """Drive ``n`` experiments; the figures at that size."""
    from labos.core.campaign import Campaign
    from labos.core.lifecycle import State
    from labos.core.results import Observation
    from labos.data.store import Store
    from labos.planners.registry import create_planner, get_planner_class

    spec = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text())
    spec["planner"] = {"name": planner_name, "options": {}}
    spec["budget"]["max_experiments"] = n
    campaign = Campaign.model_validate(spec)
    planner = create_planner(campaign.planner, campaign.space, campaign.objectives, campaign.seed)
    path = data / "labos.sqlite"
    store = Store(data)
    cid = "scaling"
    store.create_campaign(cid, campaign.name, campaign.as_json(), None)
    objective = campaign.primary.name
    tail = max(n // 10, 1)
    asks: list[float] = []
    tells: list[float] = []
    size_at = 0
    for i in range(n):
        if i == n - tail:
            size_at = store_bytes(store, path)
        t0 = time.perf_counter()
        (point,) = planner.ask(1)
        (eid,) = store.add_points(cid, planner_name, [dict(point)], planner.state(), lambda ids: ())
        asks.append(time.perf_counter() - t0)
        unit = campaign.space.to_unit(point)
        value = 2.0 + math.sin(3.0 * sum(unit)) * 0.3  # a smooth synthetic gap, eV
        store.transition(eid, State.QUEUED)
        store.start_attempt(eid)
        store.end_attempt(eid, 1, target=State.MEASURED, run_uid=None, instrument_time_s=0.0, instruments=[])
        store.transition(eid, State.COMPLETED, metrics={objective: value}, objectives={objective: value})
        t0 = time.perf_counter()
        planner.tell([Observation(params=point, objectives={objective: value}, metrics={objective: value})])
        store.mark_told(cid, [eid], planner.state())
        tells.append(time.perf_counter() - t0)
    grown = store_bytes(store, path) - size_at
    store.close()
    store = Store(data)
    t0 = time.perf_counter()
    state = store.planner_state(cid)
    assert state is not None
    get_planner_class(planner_name).restore(campaign.space, campaign.objectives, state)
    resume = time.perf_counter() - t0
    store.close()
    return {
        "bytes_per_experiment": grown / tail,
        "ask_s": sum(asks[-tail:]) / tail,
        "tell_s": sum(tells[-tail:]) / tail,
        "resume_s": resume,
    }


def main() -> None:
    """Run every size and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,500,2000")
    ap.add_argument("--planner", default="random")
    args = ap.parse_args()
    print(f"## Planner state at scale: planner {args.planner}\n")
    print("| experiments | bytes written per experiment | ask s | tell s | resume s |\n|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="labos-scaling-") as tmp:
            r = run(args.planner, n, Path(tmp))
        print(
            f"| {n} | {r['bytes_per_experiment']:,.0f} | {r['ask_s']:.4f} | {r['tell_s']:.4f} | {r['resume_s']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
