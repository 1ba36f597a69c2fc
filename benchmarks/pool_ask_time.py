"""How long a pool-based pick takes against the pool's size (categorical and real inputs, one core).

Usage: ``.venv/bin/python benchmarks/pool_ask_time.py [--planners "botorch botorch:categorical_kernel=onehot skopt"]
[--sizes 500,1000,2000,4000] [--told 40] [--asks 10]``
(planners as ``labos bench`` takes them: ``NAME[:key=value,...]``)

The space has three categorical inputs (5, 8 and 10 choices) and two reals, like the
reaction-condition pools (Buchwald, Suzuki). For each pool size, a pool of that many
distinct random candidates is drawn; the planner is told ``--told`` of them (a smooth
function of the reals plus an effect per category), then ``choose(remaining, 1)`` and the
``tell`` that follows are timed, ``--asks`` times in a row (the run goes on: later asks see
more data, and a run without a new best for 10 asks has its model checked, as in a
campaign). Prints a markdown table of the median and the mean ask + tell seconds per pool
size: one slow hyperparameter fit in ten moves the mean, not the median.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from labos.bench.runner import parse_planner
from labos.core.campaign import Objective
from labos.core.errors import ConfigurationError
from labos.core.results import Observation
from labos.core.settings import apply_thread_limits
from labos.core.space import SearchSpace
from labos.planners import create_planner

SPACE = SearchSpace.model_validate(
    {
        "ligand": {"type": "categorical", "choices": [f"L{i}" for i in range(5)]},
        "base": {"type": "categorical", "choices": [f"B{i}" for i in range(8)]},
        "additive": {"type": "categorical", "choices": [f"A{i}" for i in range(10)]},
        "temperature": {"type": "real", "low": 30, "high": 110},
        "time": {"type": "real", "low": 1, "high": 60},
    }
)


def pool(size: int, rng: np.random.Generator) -> list[dict]:
    """``size`` distinct random candidates (temperature and time on a 1-unit grid)."""
    seen: dict[tuple, dict] = {}
    while len(seen) < size:
        p = {
            "ligand": f"L{rng.integers(5)}",
            "base": f"B{rng.integers(8)}",
            "additive": f"A{rng.integers(10)}",
            "temperature": float(rng.integers(30, 111)),
            "time": float(rng.integers(1, 61)),
        }
        seen.setdefault(tuple(p.values()), p)
    return list(seen.values())


def value(p: dict) -> float:
    """A smooth response with per-category effects (minimised)."""
    effect = int(p["ligand"][1:]) * 0.3 - int(p["base"][1:]) * 0.1 + (int(p["additive"][1:]) % 3) * 0.2
    return (p["temperature"] - 80) ** 2 / 400 + (np.log(p["time"]) - 2.5) ** 2 + effect


def main() -> None:
    """Time and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planners", default="botorch skopt gp-lcb rf-lcb baybe ax")
    ap.add_argument("--sizes", default="500,1000,2000,4000")
    ap.add_argument("--told", type=int, default=40)
    ap.add_argument("--asks", type=int, default=10)
    args = ap.parse_args()
    try:
        entries = [parse_planner(name) for name in args.planners.split()]
    except ConfigurationError as exc:
        raise SystemExit(f"pool_ask_time: {exc}") from None
    apply_thread_limits(1)
    warnings.simplefilter("ignore")
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for entry in entries:
        name = entry.label
        cells = []
        for size in sizes:
            rng = np.random.default_rng(size)
            candidates = pool(size, rng)
            planner = create_planner(entry.spec, SPACE, [Objective(name="y")], seed=0)
            told = candidates[: args.told]
            planner.tell([Observation(params=p, objectives={"y": value(p)}) for p in told])
            remaining = candidates[args.told :]
            times = []
            for _ in range(args.asks):
                t0 = time.perf_counter()
                (k,) = planner.choose(remaining, 1)
                p = remaining.pop(k)
                planner.tell([Observation(params=p, objectives={"y": value(p)})])
                times.append(time.perf_counter() - t0)
            cells.append(f"{statistics.median(times):.2f} / {statistics.mean(times):.2f}")
            print(f"{name} {size}: {cells[-1]}", flush=True)
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    print(
        f"\n| planner (ask + tell s, median / mean of {args.asks}, from {args.told} told) | "
        + " | ".join(f"pool {s}" for s in sizes)
        + " |"
    )
    print("|---|" + "---|" * len(sizes))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
