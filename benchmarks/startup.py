"""How long a person waits: command start-up, time to the first experiment, Prefect's cost per experiment.

Usage: ``.venv/bin/python benchmarks/startup.py [--experiments 80] [--repeats 3]``

1. ``labos --help``, ``labos validate examples/demo.yaml`` and ``labos show`` on a store,
   each as a fresh process: median wall seconds of ``--repeats`` runs.
2. ``labos run`` of the demo with zero-duration instruments and ``--experiments`` random
   experiments, as a fresh process: seconds from the command to the first experiment's
   start (the store's timestamp) in a machine's first new data directory (Prefect's
   database migrated), in a new data directory, and in a later run of the same directory
   with its Prefect server stopped (keep-alive 0) or kept alive from the run before; and
   the loop's time per experiment (finish to finish over the second half of the
   experiments, when the run catalog is open in both loops).
3. The same campaign run by its steps in this process, without Prefect
   (``store_ingest.run_steps``): its time per experiment, and the ratio of the two.

Prints a markdown table. Ratios side by side in one run are the figures to compare:
the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
    p.add_argument("--experiments", type=int, default=80)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labos-startup-bench-"))
    env = {**os.environ, "LABOS_THREADS": "1"}
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_HOME", None)

    def steady_per_experiment(data: Path, since: float) -> float:
        """Seconds per experiment over the second half of a campaign's experiments (finish to finish).

        By then the run catalog has opened (it opens in the background and journaled runs
        are written to it when it does), so both loops pay tiled's writes alike.
        """
        with sqlite3.connect(data / "labos.sqlite") as db:
            ends = [
                row[0]
                for row in db.execute("SELECT finished FROM experiments WHERE started >= ? ORDER BY finished", (since,))
            ]
        half = len(ends) // 2
        return (ends[-1] - ends[half - 1]) / (len(ends) - half)

    def first_experiment(data: Path, keep_alive: str, cache: Path) -> tuple[float, float]:
        """Seconds from the command to the first experiment's start; loop seconds per experiment."""
        path = work / f"{data.name}.yaml"
        path.write_text(yaml.safe_dump(demo_spec(args.experiments, data)))
        run_env = {**env, "LABOS_PREFECT_KEEP_ALIVE": keep_alive, "XDG_CACHE_HOME": str(cache)}
        t0 = time.time()
        proc = subprocess.run(
            [*LABOS, "run", str(path), "-q"], env=run_env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"labos run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        with sqlite3.connect(data / "labos.sqlite") as db:
            (first,) = db.execute("SELECT MIN(started) FROM experiments WHERE started >= ?", (t0,)).fetchone()
        return first - t0, steady_per_experiment(data, t0)

    cold_machine, _ = first_experiment(work / "first", "0", work / "empty-cache")  # no migrated Prefect database
    warm_cache = work / "cache"
    first_experiment(work / "warm-up", "0", warm_cache)  # this machine's cache of the migrated database made
    new_dir, _ = first_experiment(work / "cli", "0", warm_cache)
    no_keep, _ = first_experiment(work / "cli", "0", warm_cache)  # the server stopped with the last run
    first_experiment(work / "cli", "600", warm_cache)  # starts the server, kept alive
    kept, flow_per = first_experiment(work / "cli", "600", warm_cache)  # reuses it
    server = json.loads((work / "cli" / "prefect" / "server.json").read_text())
    os.kill(server["pid"], signal.SIGTERM)

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
        (
            "`labos run`: command to first experiment, new data directory, first on this machine",
            f"{cold_machine:.2f} s",
        ),
        ("`labos run`: command to first experiment, new data directory", f"{new_dir:.2f} s"),
        ("`labos run`: command to first experiment, a later run (keep-alive 0)", f"{no_keep:.2f} s"),
        ("`labos run`: command to first experiment, a later run (server kept alive)", f"{kept:.2f} s"),
        ("`labos run`: loop time per experiment (Prefect flow)", f"{flow_per * 1000:.0f} ms"),
    ]
    os.environ.update({"LABOS_THREADS": "1"})
    t0 = time.time()
    run_steps(demo_spec(args.experiments, work / "steps"), work / "steps")
    steps_per = steady_per_experiment(work / "steps", t0)
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
