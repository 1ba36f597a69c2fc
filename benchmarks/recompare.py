"""Recompute ``compare.md`` of a finished ``labos bench`` output from its runs, without running anything.

Usage: ``.venv/bin/python benchmarks/recompare.py OUT_DIR [OUT_DIR ...]``

Reads ``summary.json`` (pool sizes, cap, seed) and ``runs.jsonl`` (or the older
``runs.json``) of each directory, merges them (the same dataset and planner in two
directories: the runs of the first), and writes ``compare.md`` into the first directory,
``compare_held_out.md`` and ``compare_tuned.md`` (the datasets marked ``held_out`` and
the others, each with its own rank table), and ``stuck.md``: per dataset and planner,
the runs left behind while the others progressed (:func:`labos.bench.protocol.stuck_runs`).
A planner is compared on a dataset only if every planner has runs there; runs are paired
by index up to the smallest run count.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from labos.bench.compare import compare_dataset, markdown, rank_table
from labos.bench.protocol import RunResult, stuck_runs


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


def runs_of(folder: Path, keep: dict[str, str]) -> dict[tuple[str, str], list[RunResult]]:
    """The runs of a bench output, planners renamed by ``keep`` (old -> new), others left out, sorted by index."""
    _, runs = load(folder)
    return {(d, keep[p]): sorted(rs, key=lambda r: r.run) for (d, p), rs in runs.items() if p in keep}


def merged(parts: list[dict]) -> dict:
    """The parts merged; the first part wins a clash."""
    out: dict = {}
    for part in parts:
        for key, rs in part.items():
            out.setdefault(key, rs)
    return out


Sizes = dict[str, tuple[int, int, int | None, int]]
Runs = dict[tuple[str, str], list[RunResult]]


def compare_all(sizes: Sizes, runs: Runs, labels: list[str] | None = None) -> dict[str, dict]:
    """Each dataset of ``sizes`` that every planner ran, compared (:func:`compare_dataset`), in ``sizes``' order.

    ``sizes`` maps a dataset to (pool size, top count, cycle cap, seed); ``runs`` maps
    (dataset, planner) to runs sorted by index; ``labels``: the planners, by default every
    one in ``runs`` in order of first appearance. A dataset not run by all is left out.
    """
    labels = labels or list(dict.fromkeys(planner for _, planner in runs))
    out = {}
    for name, (n, n_top, cap, seed) in sizes.items():
        if all((name, p) in runs for p in labels):
            capped = cap is not None and cap < n
            out[name] = compare_dataset({p: runs[(name, p)] for p in labels}, n, n_top, capped, seed=seed)
    return out


def default_row(table: dict[str, dict], default: str, peers: Sequence[str], total: dict[str, list[int]]) -> list[str]:
    """A seeds-table row's cells: the median rank of ``default`` and each peer, then the default's W/T/L against each.

    ``table`` from :func:`labos.bench.compare.rank_table`; each peer's wins, ties and
    losses are added to ``total[peer]`` for the table's "all seeds" row.
    """
    wtl = []
    for p in peers:
        a = table[default]["against"][p]
        total[p] = [t + a[k] for t, k in zip(total[p], ("win", "tie", "loss"), strict=True)]
        wtl.append(f"{a['win']}/{a['tie']}/{a['loss']}")
    return [f"{table[p]['median_rank']:g}" for p in (default, *peers)] + wtl


def write_comparisons(
    out: Path, comparisons: dict[str, dict], sizes: Sizes, runs: Runs, held_out: dict[str, bool]
) -> str:
    """Write ``compare.md``, ``compare_held_out.md``, ``compare_tuned.md`` and ``stuck.md`` into ``out``.

    ``comparisons`` from :func:`compare_all` on the same ``sizes`` and ``runs``; returns
    ``compare.md``'s text.
    """
    labels = list(dict.fromkeys(planner for _, planner in runs))
    stuck = ["| dataset | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for name in comparisons:
        n_top = sizes[name][1]
        cells = [f"{stuck_runs(runs[(name, p)], n_top)} of {len(runs[(name, p)])}" for p in labels]
        stuck.append(f"| {name} | " + " | ".join(cells) + " |")
    text = markdown(comparisons, rank_table(comparisons, labels), labels)
    (out / "compare.md").write_text(text)
    for part, keep in (("held_out", True), ("tuned", False)):
        subset = {k: v for k, v in comparisons.items() if held_out.get(k, False) == keep}
        if subset:
            (out / f"compare_{part}.md").write_text(markdown(subset, rank_table(subset, labels), labels))
    (out / "stuck.md").write_text("\n".join(stuck) + "\n")
    return text


def write_tables(out: Path, sizes: Sizes, runs: Runs, held_out: dict[str, bool]) -> str:
    """Compare every dataset all planners ran, write the tables into ``out``, return ``compare.md``.

    ``sizes`` maps a dataset to (pool size, top count, cycle cap, seed); ``runs`` maps
    (dataset, planner) to runs sorted by index; the planners' order is their first appearance.
    """
    return write_comparisons(out, compare_all(sizes, runs), sizes, runs, held_out)


def main(dirs: list[Path]) -> None:
    """Merge, compare, write and print."""
    sizes: dict[str, tuple[int, int, int | None, int]] = {}
    runs: dict[tuple[str, str], list[RunResult]] = {}
    held_out: dict[str, bool] = {}
    for out in dirs:
        summary, these = load(out)
        for name, d in summary["datasets"].items():
            sizes.setdefault(name, (d["n"], d["n_top"], summary.get("max_cycles"), summary["seed"]))
            held_out.setdefault(name, bool(d.get("held_out")))
        for key, rs in these.items():
            runs.setdefault(key, sorted(rs, key=lambda r: r.run))
    print(write_tables(dirs[0], sizes, runs, held_out))


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
