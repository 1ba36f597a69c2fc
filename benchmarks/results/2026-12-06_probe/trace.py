"""Trace one capped bench run of the botorch planner with the probe on: each pick, tops found, the probes.

Usage, from the repository root::

    LABOS_THREADS=1 .venv/bin/python benchmarks/results/2026-12-06_probe/trace.py DATASET SEED RUN

The protocol of :func:`labos.bench.protocol.run_once` (two random initial candidates, the
run's own candidate order, 40 experiments), one pick per line: experiment number, tops
found, the objective as the bench minimises it, TOP for a top candidate, the point, and
the probe made for it. One process with its own thread count, so a trajectory can differ
from the bench's run of the same index (two workers): the fits are sensitive to the order
of floating-point sums.
"""

from __future__ import annotations

import sys

import numpy as np

from labos.bench.dataset import load_dataset, pool_points
from labos.bench.protocol import candidate_order
from labos.core.campaign import Objective, PlannerSpec
from labos.core.results import Observation
from labos.planners import create_planner


def main(dataset: str, seed: int, run: int, cap: int = 40) -> None:
    """Print the run's picks and probes."""
    pool = load_dataset(f"benchmarks/datasets/{dataset}/dataset.yaml")
    rng = np.random.default_rng([seed, run])
    points = pool_points(pool)
    spec = PlannerSpec(name="botorch", options={"probe_levels": True})
    p = create_planner(spec, pool.space, [Objective(name="y")], seed=int(rng.integers(2**31)))
    measured = [int(i) for i in rng.choice(pool.n, size=2, replace=False)]
    p.tell([Observation(params=points[i], objectives={"y": float(pool.y[i])}) for i in measured])
    remaining = candidate_order(pool.n, measured, run, seed, "shuffled")
    found = sum(i in pool.top for i in measured)
    for c in range(len(measured), cap):
        (k,) = p.choose([points[i] for i in remaining], 1)  # type: ignore[attr-defined]
        i = remaining.pop(k)
        p.tell([Observation(params=points[i], objectives={"y": float(pool.y[i])})])
        found += i in pool.top
        probes = [f"probe {e['variable']} {e['levels']}" for e in p.take_log()]  # type: ignore[attr-defined]
        print(c + 1, found, round(float(pool.y[i]), 4), "TOP" if i in pool.top else "", dict(points[i]), *probes)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
