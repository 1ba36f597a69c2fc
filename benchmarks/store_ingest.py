"""What recording costs: the store's and tiled's share of the loop, documents/s into tiled, bytes per experiment.

Usage: ``.venv/bin/python benchmarks/store_ingest.py [--experiments 40] [--postgres URL]``

1. A campaign of the demo (UV-vis, 501-point spectra) with zero-duration instruments is
   run step by step (the session's steps, as the flow runs them, without Prefect), with
   every store transaction timed, and every document written to tiled and every run read
   back from it timed: their shares of the loop's time per experiment.
2. The same campaign through the Prefect flow: the same shares of that loop; with
   ``--postgres`` once more with the store on PostgreSQL.
3. The Bluesky documents of one real experiment are written again and again through
   bluesky's ``TiledWriter`` into an embedded catalog (one request per document, as
   the campaign writes them): documents/s.

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
    """Wall time spent inside some calls, and how many."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def reset(self) -> None:
        """Start counting again."""
        self.seconds, self.calls = 0.0, 0


def timed(cls: type, name: str, timer: Timer, context: bool = False) -> None:
    """Wrap ``cls.name`` (a method, or with ``context`` a context-manager method) so its calls are timed."""
    original = getattr(cls, name)
    if context:

        @contextmanager
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            t0 = time.perf_counter()
            with original(self, *args, **kwargs) as value:
                yield value
            timer.seconds += time.perf_counter() - t0
            timer.calls += 1

    else:

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - t0
                timer.calls += 1

    setattr(cls, name, wrapper)


def run_steps(spec: dict[str, Any], data_dir: Path) -> tuple[float, int]:
    """Run a campaign by its steps (no Prefect); wall seconds of the loop and experiments done."""
    from labos.core.campaign import Campaign
    from labos.session import CampaignSession

    session = CampaignSession.create(Campaign.model_validate(spec), data_dir)
    session.open_catalog()
    session.catalog  # noqa: B018 - open before the clock starts: every run is written to tiled in the loop
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


def ingest(work: Path, docs: list[tuple[str, dict[str, Any]]], repeats: int) -> tuple[float, int]:
    """Documents/s writing ``docs`` ``repeats`` times through TiledWriter (one request each); documents written."""
    from bluesky.callbacks.tiled_writer import TiledWriter

    from labos.data.runs import RunCatalog

    with RunCatalog.open(work, "ingest") as runs:
        writer = TiledWriter(runs.node, batch_size=1)
        t0 = time.perf_counter()
        n = 0
        for _ in range(repeats):
            run, desc = str(uuid.uuid4()), {}
            for name, doc in copy.deepcopy(docs):
                if name == "start":
                    doc["uid"] = run
                elif name == "descriptor":
                    desc[doc["uid"]] = doc["uid"] = str(uuid.uuid4())
                    doc["run_start"] = run
                elif name == "event":
                    doc["uid"], doc["descriptor"] = str(uuid.uuid4()), desc.get(doc["descriptor"], doc["descriptor"])
                elif name == "stop":
                    doc["uid"], doc["run_start"] = str(uuid.uuid4()), run
                writer(name, doc)
                n += 1
        return n / (time.perf_counter() - t0), n


def size(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


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

    from labos.data.db import Database
    from labos.data.runs import RunCatalog, RunWriter

    store, tiled_w, tiled_r = Timer(), Timer(), Timer()
    timed(Database, "transaction", store, context=True)
    timed(RunWriter, "__call__", tiled_w)
    timed(RunCatalog, "documents", tiled_r)
    spec = demo_spec(args.experiments, work / "steps")
    wall, n = run_steps(spec, work / "steps")
    rows = [
        ("loop time per experiment, steps without Prefect", f"{wall / n * 1000:.1f} ms"),
        (f"store write time per experiment ({store.calls / n:.0f} transactions)", f"{store.seconds / n * 1000:.1f} ms"),
        ("store share of the loop without Prefect", f"{store.seconds / wall:.1%}"),
        (
            f"tiled write time per experiment ({tiled_w.calls / n:.0f} documents)",
            f"{tiled_w.seconds / n * 1000:.1f} ms",
        ),
        ("tiled read-back time per experiment (the analysis input)", f"{tiled_r.seconds / n * 1000:.1f} ms"),
        ("tiled share (write + read) of the loop without Prefect", f"{(tiled_w.seconds + tiled_r.seconds) / wall:.1%}"),
        ("store size per experiment (SQLite, lifecycle only)", f"{_sqlite_size(work / 'steps') / n / 1024:.1f} KiB"),
        ("tiled catalog size per experiment", f"{size(work / 'steps' / 'tiled') / n / 1024:.1f} KiB"),
    ]

    from flows.campaign import run_campaign

    run_campaign(demo_spec(2, work / "flow"), work / "flow", plot=False)  # Prefect warm-up, not timed
    flows = [("SQLite", work / "flow", None)] + (
        [("PostgreSQL", work / "flow-pg", args.postgres)] if args.postgres else []
    )
    for label, where, url in flows:
        if url:
            os.environ["LABOS_STORE_URL"] = url
        for t in (store, tiled_w, tiled_r):
            t.reset()
        t0 = time.perf_counter()
        summary = run_campaign(demo_spec(args.experiments, where), where, plot=False)
        flow_wall = summary.elapsed_s or (time.perf_counter() - t0)
        rows += [
            (f"loop time per experiment through the Prefect flow, store on {label}", f"{flow_wall / n * 1000:.1f} ms"),
            (f"store share of the Prefect loop ({label})", f"{store.seconds / flow_wall:.1%}"),
            (
                f"tiled share of the Prefect loop ({label} store)",
                f"{(tiled_w.seconds + tiled_r.seconds) / flow_wall:.1%}",
            ),
        ]
        os.environ.pop("LABOS_STORE_URL", None)

    with RunCatalog.open(work / "steps", summary_id(work / "steps")) as runs:
        docs = runs.documents(runs.runs()[0][0])
    rate, count = ingest(work / "ingest", docs, args.repeats)
    rows += [
        ("documents per experiment", f"{len(docs)}"),
        (f"documents/s into tiled (embedded catalog, TiledWriter, {count} documents)", f"{rate:.0f}"),
    ]
    print(f"| figure ({args.experiments} experiments, zero-duration instruments) | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\nsingle runs: rerun to see the spread. Work dir: {work}")


def _sqlite_size(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in data_dir.glob("labos.sqlite*"))


def summary_id(data_dir: Path) -> str:
    """The id of the one campaign in ``data_dir``."""
    from labos.data.store import Store

    with Store(data_dir) as s:
        (c,) = s.campaigns()
        return c.id


if __name__ == "__main__":
    main()
