"""How long ``ask`` takes as observations accumulate (6-D space, one core).

Usage: ``.venv/bin/python benchmarks/ask_time.py [--planner botorch] [--options output_warp=none]
[--sizes 100,250,500,1000,2000]``

For each size the planner is told that many observations of a smooth 6-D function,
then ``ask(1)`` is timed right after the jump in size (hyperparameters warm-started
from a smaller data set) and three more times (the steady state of a running campaign:
the median is printed). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from labos.bench.runner import parse_options
from labos.core.campaign import Objective, PlannerSpec
from labos.core.errors import ConfigurationError
from labos.core.results import Observation
from labos.core.settings import apply_thread_limits
from labos.core.space import SearchSpace
from labos.planners import create_planner


def main() -> None:
    """Run the timing and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planner", default="botorch")
    parser.add_argument("--sizes", default="100,250,500,1000,2000")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--options", default="", help="planner options, key=value,...")
    args = parser.parse_args()
    apply_thread_limits(args.threads)
    warnings.simplefilter("ignore")
    space = SearchSpace.model_validate({f"x{i}": {"type": "real", "low": 0, "high": 1} for i in range(6)})
    try:
        options = parse_options(args.options, "--options")
    except ConfigurationError as exc:
        parser.error(str(exc))
    planner = create_planner(PlannerSpec(name=args.planner, options=options), space, [Objective(name="y")], seed=0)
    rng = np.random.default_rng(0)

    def f(p: dict[str, float]) -> float:
        return float(sum(np.sin(3 * v) for v in p.values()))

    n = 0
    print(f"planner {args.planner} {args.options}, {args.threads} thread(s)\n")
    print("| observations | ask after growth (s) | ask, steady (s) |")
    print("|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        pts = [space.from_unit(u) for u in rng.random((size - n, 6))]
        planner.tell([Observation(params=p, objectives={"y": f(p)}) for p in pts])  # type: ignore[arg-type]
        n = size
        times = []
        for _ in range(4):
            t0 = time.perf_counter()
            (q,) = planner.ask(1)
            times.append(time.perf_counter() - t0)
            planner.tell([Observation(params=q, objectives={"y": f(q)})])  # type: ignore[arg-type]
            n += 1
        print(f"| {size} | {times[0]:.2f} | {float(np.median(times[1:])):.2f} |", flush=True)


if __name__ == "__main__":
    main()
