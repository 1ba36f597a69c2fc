"""How far a dataset's top candidates can be told apart by a smooth model: the hindsight ranking.

Fits the ``botorch`` planner's GP to *every* candidate of a benchmark pool (all the
data a campaign could ever see), ranks the pool by its posterior mean and reports after
how many experiments, taken in that order, Top% reaches 0.5 / 0.8 / 1.0 (and the AF
those counts would give). It is a difficulty diagnostic, not a planner: where the
hindsight ranking needs many cycles, the top candidates are not separable from their
neighbours by any smooth trend — their rank is set by scatter — and a sequential
planner reaches the level only as fast as luck allows.

    python benchmarks/hindsight.py benchmarks/datasets/*/dataset.yaml [--options k=v,...]
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from labos.bench.dataset import load_dataset, pool_points
from labos.bench.protocol import LEVELS, first_reaching
from labos.bench.runner import parse_options
from labos.core.campaign import Objective, PlannerSpec
from labos.core.errors import ConfigurationError
from labos.core.results import Observation
from labos.planners.registry import create_planner


def hindsight(path: str, options: dict[str, Any]) -> dict[str, Any]:
    """Cycles to each Top% level and to each top candidate, in the fitted GP's order."""
    pool = load_dataset(path)
    points = pool_points(pool)
    planner = create_planner(PlannerSpec(name="botorch", options=options), pool.space, [Objective(name="y")], seed=0)
    planner.tell([Observation(params=p, objectives={"y": float(v)}) for p, v in zip(points, pool.y, strict=True)])
    order = np.argsort(-planner.mean_scores(points), kind="stable")  # type: ignore[attr-defined]
    found = np.cumsum([int(i) in pool.top for i in order])
    kth = [int(np.argmax(found >= k)) + 1 for k in range(1, pool.n_top + 1)]
    out: dict[str, Any] = {"dataset": pool.spec.name, "N": pool.n, "n_top": pool.n_top, "cycles_to_kth_top": kth}
    for a in LEVELS:
        cycles = first_reaching(found / pool.n_top, a)  # every top is found by the end: never None
        assert cycles is not None
        out[f"cycles_{a}"] = cycles
        out[f"af_{a}"] = round(math.ceil(a * pool.n) / cycles, 2)
    return out


def main() -> None:
    """Print the hindsight table for the datasets named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="dataset YAML files")
    parser.add_argument("--options", default="", help="botorch options, k=v,... (default: the planner's defaults)")
    args = parser.parse_args()
    try:
        options = parse_options(args.options, "--options")
    except ConfigurationError as exc:
        parser.error(str(exc))
    print("| dataset | N | tops | hindsight cycles to Top% 0.5 / 0.8 / 1.0 | AF 0.5 / 0.8 / 1.0 | cycles to each top |")
    print("|---|---|---|---|---|---|")
    for path in args.datasets:
        r = hindsight(path, options)
        cycles = " / ".join(str(r[f"cycles_{a}"]) for a in LEVELS)
        afs = " / ".join(str(r[f"af_{a}"]) for a in LEVELS)
        print(f"| {r['dataset']} | {r['N']} | {r['n_top']} | {cycles} | {afs} | {r['cycles_to_kth_top']} |", flush=True)


if __name__ == "__main__":
    main()
