"""The before/after tables of the fit-speed change, from this folder's and 2026-12-04_categorical's runs.

Usage, from the repository root::

    .venv/bin/python benchmarks/results/2026-12-04_fit_speed/assemble.py

``after/`` gets ``compare*.md`` and ``stuck.md`` (``benchmarks/recompare.py``'s
:func:`write_tables`): the default as it is now (``raw/``) against the same default
before the change (``../2026-12-04_categorical/raw/A``), 10 runs paired by run index, and
``timing.md``: ask + tell seconds per experiment inside those runs, before and after, per
dataset. Nothing is run again.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parent))
from recompare import load, write_tables  # noqa: E402

from labos.bench.dataset import load_dataset  # noqa: E402
from labos.planners.encoding import categorical_blocks  # noqa: E402

BEFORE = RESULTS / "2026-12-04_categorical" / "raw" / "A"
CAP = 40


def per_experiment(runs: list) -> float:
    """Median over runs of ask + tell seconds per experiment chosen by the planner."""
    return statistics.median((r.ask_seconds + r.tell_seconds) / max(len(r.top_count) - 2, 1) for r in runs)


if __name__ == "__main__":
    summary, after = load(HERE / "raw")
    _, before = load(BEFORE)
    runs = {(d, "botorch"): sorted(rs, key=lambda r: r.run) for (d, _), rs in after.items()}
    for (d, p), rs in before.items():
        if p == "botorch":
            runs[(d, "botorch-before")] = sorted(rs, key=lambda r: r.run)
    datasets = summary["datasets"]
    sizes = {d: (v["n"], v["n_top"], CAP, 0) for d, v in datasets.items()}
    held_out = {d: bool(v.get("held_out")) for d, v in datasets.items()}
    (HERE / "after").mkdir(exist_ok=True)
    write_tables(HERE / "after", sizes, runs, held_out)
    rows = [
        "| dataset | pool | categorical variables | before (s) | after (s) | before / after |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for d in sorted(datasets):
        b, a = per_experiment(runs[(d, "botorch-before")]), per_experiment(runs[(d, "botorch")])
        ratios.append(b / a)
        pool = load_dataset(RESULTS.parent / "datasets" / d / "dataset.yaml")
        cat = str(len(categorical_blocks(pool.space))) if categorical_blocks(pool.space) else ""
        rows.append(f"| {d} | {datasets[d]['n']} | {cat} | {b:.3f} | {a:.3f} | {b / a:.2f} |")
    rows.append(f"\nMedian ratio over the {len(ratios)} sets: {statistics.median(ratios):.2f}.")
    (HERE / "after" / "timing.md").write_text(
        "Ask + tell seconds per experiment, median over 10 runs (the same seed, run indices and cap)\n\n"
        + "\n".join(rows)
        + "\n"
    )
    print((HERE / "after" / "timing.md").read_text())
