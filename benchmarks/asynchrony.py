"""What asynchrony costs in experiments: the default planner choosing with ``k`` experiments in flight.

Usage: ``.venv/bin/python benchmarks/asynchrony.py benchmarks/datasets/liang_perovskite/dataset.yaml ... --lanes 1 4``

The pool-based protocol of ``labos bench`` (the same datasets, initial picks and
candidate orders), except that ``k`` experiments are in flight: the planner chooses
each new one with the others in flight as ``pending``, and learns an outcome only when
the oldest in flight ends (what a lab with ``k`` instruments and asynchronous planning
does). ``k = 1`` is the sequential protocol. Reported per dataset: the median number of
experiments until Top% reaches 0.5, 0.8 and 1.0 for each ``k``, and the ratio to ``k = 1``
(more experiments are the price; ``k`` instruments run them ``k`` at a time).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from labos.bench.dataset import Pool, load_dataset
from labos.bench.protocol import candidate_order, pool_points
from labos.core.campaign import Objective, PlannerSpec
from labos.core.results import Observation
from labos.planners import create_planner

LEVELS = (0.5, 0.8, 1.0)


def run_once(pool: Pool, lanes: int, run: int, seed: int, max_cycles: int) -> list[int]:
    """One run with ``lanes`` in flight; the count of top candidates found after each experiment told."""
    rng = np.random.default_rng([seed, run])
    points = pool_points(pool)
    p = create_planner(PlannerSpec(), pool.space, [Objective(name="y")], seed=int(rng.integers(2**31)))
    n, top, y = pool.n, pool.top, pool.y
    measured = [int(i) for i in rng.choice(n, size=2, replace=False)]
    p.tell([Observation(params=points[i], objectives={"y": float(y[i])}) for i in measured])
    found = sum(i in top for i in measured)
    counts = [sum(i in top for i in measured[:1]), found]
    remaining = candidate_order(n, measured, run, seed, "shuffled")
    flying: list[int] = []
    while (remaining or flying) and found < pool.n_top and len(counts) < max_cycles:
        while remaining and len(flying) < lanes:
            (k,) = p.choose([points[i] for i in remaining], 1, pending=[points[i] for i in flying])  # type: ignore[attr-defined]
            flying.append(remaining.pop(k))
        i = flying.pop(0)  # the oldest in flight ends first
        p.tell([Observation(params=points[i], objectives={"y": float(y[i])})])
        found += i in top
        counts.append(found)
    return counts


def first_reaching(counts: list[int], n_top: int, level: float) -> int | None:
    """Experiments until the top fraction found reaches ``level`` (``None``: not within the run)."""
    for j, c in enumerate(counts, start=1):
        if c >= level * n_top - 1e-9:
            return j
    return None


def main() -> None:
    """Run every dataset at every ``k`` and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-cycles", type=int, default=300)
    args = ap.parse_args()
    print("| dataset | k | " + " | ".join(f"Top% {lv:g}: median experiments (x k=1)" for lv in LEVELS) + " |")
    print("|---|---|" + "---|" * len(LEVELS))
    for path in args.datasets:
        pool = load_dataset(path)
        base: dict[float, float] = {}
        for k in args.lanes:
            runs = [run_once(pool, k, r, args.seed, args.max_cycles) for r in range(args.runs)]
            cells = []
            for lv in LEVELS:
                reached = [first_reaching(c, pool.n_top, lv) for c in runs]
                done = [x for x in reached if x is not None]
                if len(done) < len(reached):
                    cells.append(f"{len(reached) - len(done)} of {len(reached)} runs not within {args.max_cycles}")
                    continue
                med = statistics.median(done)
                base.setdefault(lv, med)
                cells.append(f"{med:g} ({med / base[lv]:.2f}x)")
            print(f"| {path.parent.name} | {k} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
