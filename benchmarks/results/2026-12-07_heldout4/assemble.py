"""Assemble this folder's tables from its raw bench outputs (``raw/``).

Usage, from the repository root::

    .venv/bin/python benchmarks/results/2026-12-07_heldout4/assemble.py

``raw/`` holds runs on the fourth held-out group (ten sets imported at bd039d2, before any
planner ran on them), 5 runs, 40-experiment cap, candidates in each run's own order:

- ``seed0..2``: the default (``botorch``, composition features as stick-breaking
  coordinates) and the paper's baselines, skopt and random (``run.sh``);
- ``baybe``, ``physbo``, ``ax``: the peers a group would pick instead, seed 0 (``run_peers.sh``);
- ``fractions_seed0..2``: the default with composition features as fractions (``PLAN.md``)
  on the five composition sets and photo_wf3; ``photo_wf3_seed0..2``: the default without
  the change on photo_wf3; ``fractions_unchanged_seed0``: the change on two sets without a
  composition (``run_fractions.sh``).

Written here:

- ``seed0/``, ``seed1/``, ``seed2/``: the default before the change against the four peers;
- ``all/``: every planner at seed 0, the default with the change (the peers ran with it too:
  it reaches PHYSBO's features and Ax's snapping to the nearest candidate);
- ``fractions/seed*/``: the change against the default before it on the six composition sets
  (the judgement of ``PLAN.md``), and ``fractions.md``: the rule's tally;
- ``after/seed*/``: the default with the change against the four peers (its composition
  sets' runs from ``fractions_seed*``; the other sets' runs are the same with or without
  the change, checked by ``fractions_unchanged_seed0``);
- ``seeds.md``: median rank and the default's wins/ties/losses per seed, before and after.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from recompare import compare_all, default_row, merged, runs_of, write_tables  # noqa: E402

from labos.bench.compare import rank_table  # noqa: E402
from labos.bench.protocol import stuck_runs  # noqa: E402

RAW = HERE / "raw"
DEFAULT = "botorch"
CHANGE = "botorch-fractions"
PEERS = ("skopt", "gp-lcb", "rf-lcb", "random")
OTHERS = ("baybe", "physbo", "ax")
COMPOSITIONS = ("oer_plate_3496", "oer_plate_3851", "oer_plate_3860", "oer_plate_4098", "photo_pce10", "photo_wf3")
CAP = 40
SEEDS = (0, 1, 2)


@functools.cache
def pools() -> dict[str, dict]:
    """Pool size, top count and held-out mark of every dataset benched here."""
    out: dict[str, dict] = {}
    for folder in sorted(RAW.glob("*")):
        if (folder / "summary.json").exists():
            out.update(json.loads((folder / "summary.json").read_text())["datasets"])
    return out


def sizes_of(runs: dict, seed: int) -> dict[str, tuple[int, int, int | None, int]]:
    """(pool size, top count, cap, seed) of each dataset in ``runs``."""
    return {d: (pools()[d]["n"], pools()[d]["n_top"], CAP, seed) for d in sorted({d for d, _ in runs})}


def write(folder: Path, runs: dict, seed: int) -> str:
    """The tables of ``runs`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_tables(folder, sizes_of(runs, seed), runs, {d: bool(v.get("held_out")) for d, v in pools().items()})


@functools.cache
def before(seed: int) -> dict:
    """The default before the change and the four peers at ``seed``, photo_wf3's default runs included."""
    keep = {p: p for p in (DEFAULT, *PEERS)}
    return merged([runs_of(RAW / f"seed{seed}", keep), runs_of(RAW / f"photo_wf3_seed{seed}", {DEFAULT: DEFAULT})])


@functools.cache
def after(seed: int) -> dict:
    """The default with the change and the four peers at ``seed``, on the fourth group.

    The composition sets' default runs are the change's; the other sets' are the same with or
    without it (``fractions_unchanged_seed0``: identical top counts on snar and suzuki_edbo).
    """
    runs = merged([runs_of(RAW / f"fractions_seed{seed}", {DEFAULT: DEFAULT}), before(seed)])
    return {k: v for k, v in runs.items() if k[0] != "photo_wf3"}


@functools.cache
def change(seed: int) -> dict:
    """The change's runs at ``seed`` (the composition sets)."""
    return runs_of(RAW / f"fractions_seed{seed}", {DEFAULT: CHANGE})


def fractions_table() -> str:
    """The judgement of PLAN.md: the change against the default before it, per seed, and the rule's tally."""
    lines = [
        "| seed | change vs before (W/T/L beyond noise) | better | worse | tops found, change / before "
        "| stuck runs, change / before |",
        "|---|---|---|---|---|---|",
    ]
    total = [0, 0, 0]
    stuck_total = [0, 0]
    ratios: list[float] = []
    for seed in SEEDS:
        runs = {k: v for k, v in merged([change(seed), before(seed)]).items() if k[0] in COMPOSITIONS}
        runs = {k: v for k, v in runs.items() if k[1] in (CHANGE, DEFAULT)}
        write(HERE / "fractions" / f"seed{seed}", runs, seed)
        comparisons = compare_all(sizes_of(runs, seed), runs, [CHANGE, DEFAULT])
        against = rank_table(comparisons, [CHANGE, DEFAULT])[CHANGE]["against"][DEFAULT]
        total = [t + against[k] for t, k in zip(total, ("win", "tie", "loss"), strict=True)]
        better, worse, tops, stuck = [], [], [], [0, 0]
        for name in comparisons:
            a = sum(r.top_count[-1] for r in runs[(name, CHANGE)])
            b = sum(r.top_count[-1] for r in runs[(name, DEFAULT)])
            tops.append(f"{name} {a}/{b}")
            ratios.append(a / b)
            n_top = pools()[name]["n_top"]
            stuck[0] += stuck_runs(runs[(name, CHANGE)], n_top)
            stuck[1] += stuck_runs(runs[(name, DEFAULT)], n_top)
            one = rank_table({name: comparisons[name]}, [CHANGE, DEFAULT])[CHANGE]["against"][DEFAULT]
            (better if one["win"] else worse if one["loss"] else []).append(name)
        stuck_total = [stuck_total[0] + stuck[0], stuck_total[1] + stuck[1]]
        lines.append(
            f"| {seed} | {against['win']}/{against['tie']}/{against['loss']} | {', '.join(better) or '-'} | "
            f"{', '.join(worse) or '-'} | {'; '.join(tops)} | {stuck[0]} / {stuck[1]} |"
        )
    geo = float(np.exp(np.mean(np.log(ratios))))
    lines.append(
        f"| all | **{total[0]}/{total[1]}/{total[2]}** | | | geometric mean of the ratios {geo:.2f} "
        f"| **{stuck_total[0]} / {stuck_total[1]}** |"
    )
    verdict = total[0] >= 2 and total[2] == 0 and stuck_total[0] <= stuck_total[1]
    lines += [
        "",
        "Rule (PLAN.md): better beyond noise on at least two of the 18 set-seeds, worse on none, "
        f"stuck runs not more: **{'met' if verdict else 'not met'}**.",
    ]
    text = "\n".join(lines) + "\n"
    (HERE / "fractions.md").write_text(text)
    return text


def seeds_table() -> str:
    """Median rank of each planner and the default's W/T/L against each, per seed, before and after the change."""
    lines = [
        "| default | seed | "
        + " | ".join(f"median rank {p}" for p in (DEFAULT, *PEERS))
        + " | "
        + " | ".join(f"default vs {p} (W/T/L)" for p in PEERS)
        + " |",
        "|---|---|" + "---|" * (2 * len(PEERS) + 1),
    ]
    for label in ("before", "after"):
        total = {p: [0, 0, 0] for p in PEERS}
        for seed in SEEDS:
            if not (RAW / f"seed{seed}" / "summary.json").exists():
                continue
            runs = after(seed) if label == "after" else before(seed)
            runs = {k: v for k, v in runs.items() if k[0] != "photo_wf3"}  # the fourth group only
            labels = [DEFAULT, *PEERS]
            table = rank_table(compare_all(sizes_of(runs, seed), runs, labels), labels)
            if label == "after":
                write(HERE / "after" / f"seed{seed}", runs, seed)
            cells = default_row(table, DEFAULT, PEERS, total)
            lines.append(f"| {label} | {seed} | " + " | ".join(cells) + " |")
        cells = [f"**{label}, all seeds**", ""] + [""] * (1 + len(PEERS))
        lines.append("| " + " | ".join(cells + ["{}/{}/{}".format(*total[p]) for p in PEERS]) + " |")
    text = "\n".join(lines) + "\n"
    (HERE / "seeds.md").write_text(text)
    return text


def timing_table() -> str:
    """Mean ask + tell per cycle (s) and wall per run (s) by planner and set, seed 0 (each planner's own bench run)."""
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for folder in (RAW / "seed0", *(RAW / p for p in OTHERS)):
        if not (folder / "runs.jsonl").exists():
            continue
        for line in (folder / "runs.jsonl").read_text().splitlines():
            r = json.loads(line)
            cycles = max(len(r["top_count"]) - 2, 1)
            rows.setdefault((r["dataset"], r["planner"]), []).append(
                ((r["ask_seconds"] + r.get("tell_seconds", 0.0)) / cycles, r["wall_seconds"])
            )
    planners = list(dict.fromkeys(p for _, p in rows))
    sets = list(dict.fromkeys(d for d, _ in rows))
    lines = ["| dataset (pool) | " + " | ".join(planners) + " |", "|---|" + "---|" * len(planners)]
    for d in sets:
        cells = []
        for p in planners:
            v = rows.get((d, p))
            cells.append(f"{np.mean([a for a, _ in v]):.2f} / {np.mean([w for _, w in v]):.1f}" if v else "")
        lines.append(f"| {d} ({pools()[d]['n']:,}) | " + " | ".join(cells) + " |")
    text = "s per cycle (ask + tell) / wall s per run, seed 0\n\n" + "\n".join(lines) + "\n"
    (HERE / "timing.md").write_text(text)
    return text


if __name__ == "__main__":
    keep = {p: p for p in (DEFAULT, *PEERS)}
    for s in SEEDS:
        if (RAW / f"seed{s}" / "summary.json").exists():
            write(HERE / f"seed{s}", runs_of(RAW / f"seed{s}", keep), s)
    others = merged([runs_of(RAW / p, {p: p}) for p in OTHERS if (RAW / p / "summary.json").exists()])
    print(write(HERE / "all", merged([after(0), others]), 0))
    print(fractions_table())
    print(seeds_table())
    print(timing_table())
