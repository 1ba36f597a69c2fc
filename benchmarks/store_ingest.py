"""What the durable store costs: documents/s, bytes per experiment, and its share of the loop.

Usage: ``.venv/bin/python benchmarks/store_ingest.py [--experiments 40] [--postgres URL]``

1. A campaign of the demo (UV-vis, 501-point spectra) with zero-duration instruments is
   run step by step (the session's steps, as the flow runs them, without Prefect), with
   every store transaction timed: the store's share of the loop's time per experiment.
2. The same campaign through the Prefect flow: the store's share of that loop.
3. The Bluesky documents of one real experiment are written again and again, one
   transaction each as the RunEngine's callback writes them: documents/s and bytes per
   experiment, into SQLite and (with ``--postgres``) into PostgreSQL.

Prints a markdown table. Ratios, not absolute times, are the figures to compare: the
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def demo_spec(n: int, data_dir: Path) -> dict[str, Any]:
    """The demo campaign with zero-duration instruments and ``n`` random experiments."""
    spec = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text())
    spec["simulation"]["acceleration"] = float("inf")
    spec["budget"]["max_experiments"] = n
    spec["planner"] = {"name": "random", "options": {}}
    spec["data_dir"] = str(data_dir)
    return spec


class Timer:
    """Wall time spent inside the store's transactions."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.transactions = 0


def timed_store(timer: Timer) -> None:
    """Wrap :meth:`Database.transaction` so every write transaction is timed."""
    from labos.data.db import Database

    original = Database.transaction

    @contextmanager
    def transaction(self: Database, durable: bool = True) -> Iterator[Any]:
        t0 = time.perf_counter()
        with original(self, durable) as tx:
            yield tx
        timer.seconds += time.perf_counter() - t0
        timer.transactions += 1

    Database.transaction = transaction  # type: ignore[method-assign]


def run_steps(spec: dict[str, Any], data_dir: Path) -> tuple[float, int]:
    """Run a campaign by its steps (no Prefect); wall seconds of the loop and experiments done."""
    from labos.core.campaign import Campaign
    from labos.session import CampaignSession

    session = CampaignSession.create(Campaign.model_validate(spec), data_dir)
    t0 = time.perf_counter()
    while True:
        step = session.next_step()
        if step.kind == "propose":
            session.propose(step.n)
        elif step.kind == "tell":
            session.tell()
        elif step.kind in ("queue", "run", "analyse"):
            getattr(session, step.kind)(step.experiment_id)
        else:
            break
    wall = time.perf_counter() - t0
    n = sum(r.status == "completed" for r in session.records())
    session.finish("completed")
    return wall, n


def ingest(target: str | Path, docs: list[tuple[str, dict[str, Any]]], repeats: int) -> tuple[float, int]:
    """Documents/s writing ``docs`` ``repeats`` times, one transaction each; and the documents written."""
    from labos.data.store import Store

    with Store(target) as store:
        store.create_campaign("bench", "bench", {}, None)
        t0 = time.perf_counter()
        n = 0
        for _ in range(repeats):
            run = str(uuid.uuid4())
            for name, doc in docs:
                store.add_document("bench", run, name, doc)
                n += 1
        return n / (time.perf_counter() - t0), n


def main() -> None:
    """Measure and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiments", type=int, default=40)
    p.add_argument("--repeats", type=int, default=50, help="experiments' documents written for documents/s")
    p.add_argument("--postgres", help="a PostgreSQL URL to measure ingest into as well")
    args = p.parse_args()
    os.environ.setdefault("LABOS_THREADS", "1")
    from labos.core.settings import apply_thread_limits

    apply_thread_limits(1)
    work = Path(tempfile.mkdtemp(prefix="labos-store-bench-"))
    from flows.settings import configure_prefect

    configure_prefect(work / "prefect")

    timer = Timer()
    timed_store(timer)
    spec = demo_spec(args.experiments, work / "steps")
    wall, n = run_steps(spec, work / "steps")
    steps_share = timer.seconds / wall
    steps_per_exp = wall / n
    store_per_exp = timer.seconds / n
    tx_per_exp = timer.transactions / n
    db = work / "steps" / "labos.sqlite"
    size = db.stat().st_size + sum(f.stat().st_size for f in db.parent.glob("labos.sqlite-*"))

    from flows.campaign import run_campaign

    run_campaign(demo_spec(2, work / "flow"), work / "flow", plot=False)  # Prefect warm-up, not timed
    timer.seconds, timer.transactions = 0.0, 0
    t0 = time.perf_counter()
    summary = run_campaign(demo_spec(args.experiments, work / "flow"), work / "flow", plot=False)
    flow_wall = summary.elapsed_s or (time.perf_counter() - t0)
    flow_share = timer.seconds / flow_wall

    from labos.data.store import Store

    with Store(work / "steps") as store:
        (c,) = store.campaigns()
        docs = store.documents(store.experiments(c.id)[0].run_uids[-1])
    sqlite_label = "SQLite (WAL; a document is made durable by the next lifecycle commit)"
    rates = {sqlite_label: ingest(work / "ingest", docs, args.repeats)}
    if args.postgres:
        rates["PostgreSQL"] = ingest(args.postgres, copy.deepcopy(docs), args.repeats)

    print(f"| figure ({args.experiments} experiments, zero-duration instruments) | value |")
    print("|---|---|")
    print(f"| loop time per experiment, steps without Prefect | {steps_per_exp * 1000:.1f} ms |")
    print(f"| store write time per experiment ({tx_per_exp:.0f} transactions) | {store_per_exp * 1000:.1f} ms |")
    print(f"| store share of the loop without Prefect | {steps_share:.1%} |")
    print(f"| loop time per experiment through the Prefect flow | {flow_wall / args.experiments * 1000:.1f} ms |")
    print(f"| store share of the Prefect loop | {flow_share:.1%} |")
    print(f"| store size per experiment (SQLite, documents included) | {size / n / 1024:.1f} KiB |")
    print(f"| documents per experiment | {len(docs)} |")
    for name, (rate, count) in rates.items():
        print(f"| documents/s into {name} ({count} documents, one transaction each) | {rate:.0f} |")
    print(f"\nsingle runs: rerun to see the spread. Work dir: {work}")


if __name__ == "__main__":
    main()
