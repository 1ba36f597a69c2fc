"""How long a person waits: command start-up, time to the first experiment, Prefect's cost per experiment.

Usage: ``.venv/bin/python benchmarks/startup.py [--experiments 40] [--repeats 3]``

1. ``labos --help``, ``labos validate examples/demo.yaml`` and ``labos show`` on a store,
   each as a fresh process: median wall seconds of ``--repeats`` runs.
2. ``labos run`` of the demo with zero-duration instruments and ``--experiments`` random
   experiments, as a fresh process: seconds from the command to the first experiment's
   start (the store's timestamp), and the loop's time per experiment (first start to last
   finish).
3. The same campaign run by its steps in this process, without Prefect
   (``store_ingest.run_steps``): its time per experiment, and the ratio of the two.

Prints a markdown table. Ratios side by side in one run are the figures to compare:
the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_ingest import ROOT, demo_spec, run_steps

LABOS = [sys.executable, "-m", "labos.cli"]


def wall(argv: list[str], repeats: int, env: dict[str, str]) -> float:
    """Median wall seconds of ``argv`` as a fresh process."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Measure and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiments", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labos-startup-bench-"))
    env = {**os.environ, "LABOS_THREADS": "1"}
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_HOME", None)

    spec = demo_spec(args.experiments, work / "cli")
    path = work / "demo.yaml"
    path.write_text(yaml.safe_dump(spec))
    starts = []
    for _ in range(2):  # a fresh data directory (Prefect's database created), then the same one again
        t0 = time.time()
        proc = subprocess.run([*LABOS, "run", str(path), "-q"], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"labos run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        with sqlite3.connect(work / "cli" / "labos.sqlite") as db:
            first, last, n = db.execute(
                "SELECT MIN(started), MAX(finished), COUNT(*) FROM experiments WHERE started >= ?", (t0,)
            ).fetchone()
        starts.append(first - t0)
    to_first_cold, to_first = starts
    flow_per = (last - first) / n

    rows = [
        ("`labos --help`", f"{wall([*LABOS, '--help'], args.repeats, env):.2f} s"),
        (
            "`labos validate examples/demo.yaml`",
            f"{wall([*LABOS, 'validate', str(ROOT / 'examples' / 'demo.yaml')], args.repeats, env):.2f} s",
        ),
        (
            "`labos show` (a store of one campaign)",
            f"{wall([*LABOS, 'show', '--data-dir', str(work / 'cli')], args.repeats, env):.2f} s",
        ),
        ("`labos run`: command to first experiment, new data directory", f"{to_first_cold:.2f} s"),
        ("`labos run`: command to first experiment, its second run", f"{to_first:.2f} s"),
        ("`labos run`: loop time per experiment (Prefect flow)", f"{flow_per * 1000:.0f} ms"),
    ]
    os.environ.update({"LABOS_THREADS": "1"})
    steps_wall, steps_n = run_steps(demo_spec(args.experiments, work / "steps"), work / "steps")
    steps_per = steps_wall / steps_n
    rows += [
        ("the same steps without Prefect: time per experiment", f"{steps_per * 1000:.0f} ms"),
        ("Prefect flow / plain steps, per experiment", f"{flow_per / steps_per:.2f}x"),
    ]
    print(f"| figure ({args.experiments} zero-duration experiments; median of {args.repeats} for commands) | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\nwork dir: {work}")


if __name__ == "__main__":
    main()
