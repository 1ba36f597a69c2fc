"""How lanes run: one RunEngine per lane in threads, against one RunEngine interleaving run-keyed plans.

Four experiments, each on its own simulated furnace (an anneal that takes ``--anneal``
wall-clock seconds, then a robot-like settle of ``--settle`` seconds as a ``sleep``), run

- on four :class:`labos.lanes.LaneRunEngine` s, one thread each (what labos does), and
- on one RunEngine, the four plans wrapped in ``bpp.set_run_key_wrapper`` and interleaved
  message by message (each response routed back to the plan that asked), the other way
  bluesky offers to have several runs open at once.

Prints the wall time of each and their ratio, side by side in one process. On one
RunEngine every ``wait`` and ``sleep`` holds up every plan, so the run-keyed way is only
as parallel as the plans' messages happen to line up::

    .venv/bin/python benchmarks/lane_engines.py
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections.abc import Generator, Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky import RunEngine

from labos.core.campaign import WorkflowSpec
from labos.devices.lab import build_lab
from labos.lanes import LaneRunEngine


def plan(furnace: Any, sample: str, settle: float) -> Generator[Any, Any, None]:
    """One experiment: an anneal, then a settle (a transfer's worth of waiting)."""

    @bpp.run_decorator(md={"sample": sample})  # type: ignore[untyped-decorator]
    def inner() -> Generator[Any, Any, None]:
        yield from bps.abs_set(furnace, {"sample_id": sample, "program": PROGRAM}, wait=True)
        yield from bps.sleep(settle)

    yield from inner()


def interleave(plans: Sequence[Generator[Any, Any, Any]]) -> Generator[Any, Any, None]:
    """Round-robin the plans' messages on one RunEngine, sending each response to the plan that asked."""
    replies: list[Any] = [None] * len(plans)
    live = list(range(len(plans)))
    while live:
        for i in list(live):
            try:
                msg = plans[i].send(replies[i])
            except StopIteration:
                live.remove(i)
                continue
            replies[i] = yield msg


PROGRAM = {"temperature": 100.0, "dwell": 1.0, "ramp_rate": 20.0}
"""A short anneal: 225 s of ramp and 60 s at 100 degC, simulated."""
ANNEAL_SIM_S = (100.0 - 25.0) / 20.0 * 60.0 + 60.0


def lab(n: int, anneal: float) -> Any:
    """``n`` simulated furnaces whose anneal takes ``anneal`` wall-clock seconds."""
    instruments: dict[str, Any] = {f"furnace_{i}": {"kind": "furnace"} for i in range(n)}
    instruments["uv"] = {"kind": "uvvis"}
    steps = [
        {"action": "anneal", "instruments": [f"furnace_{i}" for i in range(n)]},
        {"action": "measure", "instrument": "uv"},
    ]
    workflow = WorkflowSpec.model_validate({"instruments": instruments, "steps": steps})
    return build_lab(workflow, {"acceleration": ANNEAL_SIM_S / anneal, "landscape": "batio3-solid-state"}, 0)


def place(lab_: Any, names: Sequence[str]) -> None:
    """Put one fresh sample in each furnace's boat (the previous ones taken out)."""
    import numpy as np

    from simulators.world import SimSample

    world = lab_.context.resources["simulators.world"]
    recipe = {"BaCO3": 0.5, "TiO2": 0.5, "milling_time": 30.0}
    for i, name in enumerate(names):
        if (there := world.book.at(f"furnace_{i}/boat1")) is not None:
            world.book.move(there, None, "taken out")
        state = world.landscape.make(recipe, np.random.default_rng(i))
        world.book.add(SimSample(id=name, landscape=world.landscape.name, state=state, location=f"furnace_{i}/boat1"))


def main() -> None:
    """Run both ways and print the times."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--anneal", type=float, default=0.5, help="wall-clock seconds of each anneal")
    ap.add_argument("--settle", type=float, default=0.1, help="wall-clock seconds of the sleep after it")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    threads_s, keyed_s = [], []
    for rep in range(args.repeats):
        lab_ = lab(args.lanes, args.anneal)
        furnaces = [lab_.devices[f"furnace_{i}"] for i in range(args.lanes)]
        try:
            names = [f"t{rep}-{i}" for i in range(args.lanes)]
            place(lab_, names)
            engines = [LaneRunEngine({}, context_managers=[]) for _ in range(args.lanes)]
            workers = [
                threading.Thread(target=RE, args=(plan(f, s, args.settle),))
                for RE, f, s in zip(engines, furnaces, names, strict=True)
            ]
            t0 = time.monotonic()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            threads_s.append(time.monotonic() - t0)
            names = [f"k{rep}-{i}" for i in range(args.lanes)]
            place(lab_, names)
            RE = RunEngine({}, context_managers=[])
            keyed = [
                bpp.set_run_key_wrapper(plan(f, s, args.settle), run=s) for f, s in zip(furnaces, names, strict=True)
            ]
            t0 = time.monotonic()
            RE(interleave(keyed))
            keyed_s.append(time.monotonic() - t0)
        finally:
            lab_.close()
    best_t, best_k = min(threads_s), min(keyed_s)
    print(f"{args.lanes} experiments, anneal {args.anneal} s + sleep {args.settle} s each (best of {args.repeats})")
    print(f"  one RunEngine per lane, threads: {best_t:.3f} s")
    print(f"  one RunEngine, run-keyed plans:  {best_k:.3f} s")
    print(f"  ratio (run-keyed / per lane):    {best_k / best_t:.2f}")
    serial = args.lanes * (args.anneal + args.settle)
    print(f"  (all in series would be {serial:.2f} s; all at once {args.anneal + args.settle:.2f} s)")
    assert math.isfinite(best_t)


if __name__ == "__main__":
    main()
