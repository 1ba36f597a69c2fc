"""``labos bench``: planners on datasets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from labos.core.errors import LabosError

if TYPE_CHECKING:
    pass

from labos.cli.common import EXIT_FAILED, EXIT_OK, _console


def cmd_bench(args: argparse.Namespace) -> int:
    """Pool-based benchmark (Liang et al. 2021 protocol) of planners on datasets."""
    from labos.bench.runner import OPTIONAL_PEERS, default_jobs, parse_planner, planner_available, run_benchmark

    err = _console(stderr=True)
    entries = []
    for text in args.planners.split():
        name = text.partition(":")[0]
        if name in OPTIONAL_PEERS and not planner_available(name):
            extra = OPTIONAL_PEERS[name]
            err.print(
                f"{name} skipped: install the optional {extra} extra (pip install 'labos[{extra}]') to compare with it",
                markup=False,
            )
            continue
        entries.append(parse_planner(text))
    if not entries:
        raise LabosError("no planner to benchmark")
    jobs = args.jobs or default_jobs()
    if args.max_cycles is not None and args.max_cycles < 3:
        raise LabosError(
            f"--max-cycles must be at least 3 (two initial experiments and one chosen), got {args.max_cycles}"
        )
    out = Path(args.out)
    err.print(
        f"benchmark: {len(args.datasets)} dataset(s) x {len(entries)} planner(s) x {args.runs} runs, "
        f"seed {args.seed}, {jobs} process(es) -> {out}"
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(), console=err, disable=args.quiet) as bar:
        task = bar.add_task("runs", total=len(args.datasets) * len(entries) * args.runs)
        summary = run_benchmark(
            args.datasets,
            entries,
            runs=args.runs,
            seed=args.seed,
            jobs=jobs,
            out=out,
            progress=lambda done, total: bar.update(task, completed=done),
            max_cycles=args.max_cycles,
            compare=args.compare,
            order=args.order,
        )
    _console().print((out / "results.md").read_text(), markup=False)
    if args.compare:
        _console().print((out / "compare.md").read_text(), markup=False)
    _console().print(f"summary: {out / 'summary.json'}; curves: {out}/*_top.png", markup=False)
    return EXIT_OK if summary["datasets"] else EXIT_FAILED
