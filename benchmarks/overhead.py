"""What labos costs on the critical path, and how busy it keeps instruments.

Usage: ``.venv/bin/python benchmarks/overhead.py [--experiments 40] [--lanes 4] [--busy-s 2]``

1. **Overhead per experiment, as a ratio.** The same ``N`` experiments of the demo
   (synthesize, measure a UV-vis spectrum) on zero-duration simulated instruments, run
   through labos (planner ``random``, the store, tiled, the Prefect flow) and through a bare
   RunEngine loop driving the same ophyd devices with the same plan, in one process, one
   after the other. labos's time is counted from the first attempt's start to the last
   experiment's end as stored (Prefect's server start-up and the catalog's opening are
   one-off costs, reported apart).
2. **Utilisation with lanes.** A campaign whose synthesis step names ``--lanes``
   interchangeable synthesizers, each synthesis taking about ``--busy-s`` wall-clock
   seconds (the simulated clock's acceleration is set for it), planner ``random``. Each
   synthesizer's busy time is read from its own action log (the world file), and divided
   by the wall time while work remained (first action's start to the last one's end).

Prints the figures. Ratios, not absolute times, are what to compare: the machines are
shared and noisy.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from store_ingest import demo_spec  # the same zero-duration demo campaign (run as a script: benchmarks/ is on the path)

WARM_UP = 5
"""Experiments whose start the steady-state figure leaves out: the first analysis imports its libraries, the
catalog's server starts meanwhile."""


def bare(spec: dict[str, Any], n: int) -> float:
    """``n`` experiments on a bare RunEngine with the same devices and plan; seconds."""
    from bluesky import RunEngine

    from labos.checks import parameter_consumers
    from labos.core.campaign import Campaign
    from labos.data.documents import RunReadings
    from labos.devices.lab import build_lab
    from labos.planners.registry import create_planner
    from labos.plans.experiment import experiment_plan, resolve_steps

    campaign = Campaign.model_validate(spec)
    lab = build_lab(campaign.workflow, campaign.simulation, campaign.seed)
    consumers, _ = parameter_consumers(campaign, lab.inputs)
    planner = create_planner(campaign.planner, campaign.space, campaign.objectives, campaign.seed)
    points = planner.ask(n)
    RE = RunEngine({}, context_managers=[])
    RE.subscribe(RunReadings())
    try:
        t0 = time.perf_counter()
        for i, p in enumerate(points):
            steps = resolve_steps(campaign.workflow.steps, p, consumers)
            RE(experiment_plan(lab.devices, steps, f"bare-{i}-a1", {"experiment_id": f"bare-{i}"}))
        return time.perf_counter() - t0
    finally:
        lab.close()


def through_labos(spec: dict[str, Any]) -> dict[str, float]:
    """The campaign through labos; its wall time, and the stored span from first start to last end."""
    from labos.api import run
    from labos.data.store import Store

    t0 = time.perf_counter()
    summary = run(spec, plot=False)
    wall = time.perf_counter() - t0
    with Store(summary.store) as store:
        attempts = store.attempts(summary.campaign_id)
        exps = store.experiments(summary.campaign_id)
    starts = sorted(a.started for a in attempts)
    last = max(e.finished or 0.0 for e in exps)
    warm = min(WARM_UP, len(starts) - 1)
    return {
        "wall": wall,
        "span": last - starts[0],
        "n": float(len(exps)),
        "steady_span": last - starts[warm],  # after the first experiments' one-off imports and openings
        "steady_n": float(len(exps) - warm),
    }


def utilisation(lanes: int, busy_s: float, n: int, data_dir: Path) -> dict[str, Any]:
    """A campaign on ``lanes`` synthesizers of about ``busy_s`` s each; busy time over wall time, from their logs."""
    from labos.api import run
    from simulators.world import SampleBook

    spec = demo_spec(n, data_dir)
    world = data_dir / "world.sqlite"
    names = [f"synth_{i}" for i in range(1, lanes + 1)]
    spec["workflow"]["instruments"] = {name: {"kind": "synthesizer"} for name in names} | {
        f"uvvis_{i}": {"kind": "uvvis"} for i in range(1, lanes + 1)
    }
    spec["workflow"]["steps"] = [
        {"action": "synthesize", "instruments": names},
        {
            "action": "measure",
            "instruments": [f"uvvis_{i}" for i in range(1, lanes + 1)],
            "options": {"integration_time": 0.2},
        },
    ]
    spec["space"]["reaction_time"] = {"type": "real", "low": 290, "high": 310, "unit": "s"}
    spec["space"]["temperature"] = {"type": "real", "low": 140, "high": 150, "unit": "degC"}
    spec["simulation"]["world"] = str(world)
    # a synthesis is then about 730 simulated s (dosing, heating, 300 s of reaction, quench)
    spec["simulation"]["acceleration"] = 730.0 / busy_s
    run(spec, plot=False)
    book = SampleBook(world)
    try:
        acts = [a for a in book.actions() if a.instrument in names]
    finally:
        book.close()
    start = min(a.wall_start for a in acts)
    end = max(a.wall_end for a in acts)
    busy = {name: sum(a.wall_end - a.wall_start for a in acts if a.instrument == name) for name in names}
    mean_action = sum(a.wall_end - a.wall_start for a in acts) / len(acts)
    return {
        "per_instrument": {k: v / (end - start) for k, v in busy.items()},
        "mean": sum(busy.values()) / (lanes * (end - start)),
        "action_s": mean_action,
        "wall": end - start,
    }


def main() -> None:
    """Run both measurements and print them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=40)
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--busy-s", type=float, default=2.0)
    ap.add_argument("--utilisation-experiments", type=int, default=24)
    args = ap.parse_args()
    os.environ.setdefault("LABOS_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="labos-overhead-") as tmp:
        spec = demo_spec(args.experiments, Path(tmp) / "labos")
        bare(copy.deepcopy(spec), 2)  # warm the imports and caches for both
        b = bare(copy.deepcopy(spec), args.experiments)
        lab = through_labos(spec)
        per_bare = b / args.experiments * 1000
        per_labos = lab["span"] / lab["n"] * 1000
        steady = lab["steady_span"] / lab["steady_n"] * 1000
        print(f"## Overhead: {args.experiments} zero-duration experiments (demo workflow, planner random)")
        print(f"- bare RunEngine loop: {per_bare:.1f} ms per experiment")
        print(f"- labos (store, tiled, Prefect): {per_labos:.1f} ms per experiment (first start to last end)")
        extra, ratio = per_labos - per_bare, per_labos / per_bare
        print(f"- labos on the critical path: {extra:.1f} ms per experiment; ratio {ratio:.1f}x")
        print(
            f"- steady state (after the first {WARM_UP} experiments): {steady:.1f} ms per experiment; "
            f"on the critical path {steady - per_bare:.1f} ms; ratio {steady / per_bare:.1f}x"
        )
        print(
            f"- one-off: {lab['wall'] - lab['span']:.1f} s (Prefect's server, the catalog, imports; "
            "tiled's backlog shipped at the end)"
        )
        u = utilisation(args.lanes, args.busy_s, args.utilisation_experiments, Path(tmp) / "util")
        n = args.utilisation_experiments
        print(f"\n## Utilisation: {args.lanes} lanes, synthesis about {args.busy_s} s, {n} experiments")
        print(f"- mean synthesis action: {u['action_s']:.2f} s wall; work spanned {u['wall']:.1f} s")
        for name, share in u["per_instrument"].items():
            print(f"- {name}: {share:.1%} busy")
        print(f"- mean: {u['mean']:.1%} (target >= 95%)")
        assert math.isfinite(u["mean"])


if __name__ == "__main__":
    main()
