"""Recompute ``compare.md`` of a finished ``labos bench`` output from its runs, without running anything.

Usage: ``.venv/bin/python benchmarks/recompare.py OUT_DIR [OUT_DIR ...]``

Reads ``summary.json`` (pool sizes, cap, seed) and ``runs.jsonl`` (or the older
``runs.json``) of each directory, merges them (the same dataset and planner in two
directories: the runs of the first), and writes ``compare.md`` into the first directory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from labos.bench.compare import compare_dataset, markdown, rank_table
from labos.bench.protocol import RunResult


def load(out: Path) -> tuple[dict, dict[tuple[str, str], list[RunResult]]]:
    """A bench output's summary and its runs by (dataset, planner)."""
    summary = json.loads((out / "summary.json").read_text())
    runs: dict[tuple[str, str], list[RunResult]] = {}
    if (out / "runs.jsonl").exists():
        for line in (out / "runs.jsonl").read_text().splitlines():
            row = json.loads(line)
            key = (row.pop("dataset"), row.pop("planner"))
            runs.setdefault(key, []).append(
                RunResult(planner=key[1], **{k: v for k, v in row.items() if k != "planner"})
            )
    else:
        for key, rows in json.loads((out / "runs.json").read_text()).items():
            dataset, planner = key.split("/", 1)
            runs[(dataset, planner)] = [RunResult(**r) for r in rows]
    return summary, runs


def main(dirs: list[Path]) -> None:
    """Merge, compare, write and print."""
    sizes: dict[str, tuple[int, int, int | None, int]] = {}
    runs: dict[tuple[str, str], list[RunResult]] = {}
    labels: list[str] = []
    for out in dirs:
        summary, these = load(out)
        for name, d in summary["datasets"].items():
            sizes.setdefault(name, (d["n"], d["n_top"], summary.get("max_cycles"), summary["seed"]))
        for key, rs in these.items():
            runs.setdefault(key, sorted(rs, key=lambda r: r.run))
            if key[1] not in labels:
                labels.append(key[1])
    comparisons = {}
    for name, (n, n_top, cap, seed) in sizes.items():
        have = [p for p in labels if (name, p) in runs]
        if have != labels:
            continue  # a dataset not run by every planner is left out of the comparison
        capped = cap is not None and cap < n
        comparisons[name] = compare_dataset({p: runs[(name, p)] for p in labels}, n, n_top, capped, seed=seed)
    text = markdown(comparisons, rank_table(comparisons, labels), labels)
    (dirs[0] / "compare.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
