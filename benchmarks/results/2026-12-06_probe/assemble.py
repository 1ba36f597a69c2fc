"""Assemble this folder's tables from its raw bench outputs and the earlier snapshots' peer runs.

Usage, from the repository root::

    .venv/bin/python benchmarks/results/2026-12-06_probe/assemble.py

``raw/heldout_seed0..2``: the ``botorch`` planner with the probe (labelled ``botorch``
there: the probe was on by default when they ran) and without it
(``botorch:probe_levels=false``, the default now), side by side in one run per seed, on the eleven held-out
sets with categorical variables (5 runs, 40-experiment cap, each run's candidates in its
own order). ``raw/dev_seed0``, ``raw/dev_seed1`` (and ``raw/dev_seed0_first``, an
earlier form of the probe): the three tuned categorical sets the probe was designed on.
Written here:

- ``before_after/seed0..2/``: with and without the probe, per seed (``compare.md``,
  ``stuck.md``), labelled ``probe on`` and ``probe off``;
- ``seeds.md``: all 22 held-out sets per seed, the planner with and without the probe against the
  paper's baselines, skopt and random (their runs from ``../2026-12-04_candidate_order/raw``
  and ``../2026-12-06_heldout2/raw``; the probe cannot act on a set without categorical
  variables, so there the planner's earlier runs stand for both);
- ``reproduced.md``: which of the side-by-side runs without the probe repeat the earlier
  snapshots' default runs exactly;
- part 2 (``PLAN2.md``), the probe of settled choices: ``settled/dev_seed0..1/`` (the tuned
  sets, ``raw/settled_dev_seed*``), ``settled/third_seed0..2/`` (the third held-out group,
  ``raw/third_seed*``) and ``settled.md`` (per seed: W/T/L, tops found and stuck runs).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parent))
from recompare import compare_all, default_row, load, merged, runs_of, write_comparisons, write_tables  # noqa: E402

from labos.bench.compare import rank_table  # noqa: E402
from labos.bench.protocol import stuck_runs  # noqa: E402

RAW = HERE / "raw"
FIRST = RESULTS / "2026-12-04_candidate_order" / "raw"
SECOND = RESULTS / "2026-12-06_heldout2" / "raw"
OLD = {0: [FIRST / "default", FIRST / "main", SECOND / "main"], 1: [FIRST / "seed1", SECOND / "seed1"]}
OLD[2] = [FIRST / "seed2", SECOND / "seed2"]
DEFAULT, OFF = "botorch", "botorch:probe_levels=false"
SETTLED = "botorch:probe_levels=true,probe_target=settled"
LABELS = {DEFAULT: "probe on", OFF: "probe off"}
PEERS = ("skopt", "gp-lcb", "rf-lcb", "random")
CAP = 40


def pools() -> dict[str, dict]:
    """Pool size, top count and held-out mark of every dataset benched here or in the earlier snapshots."""
    out: dict[str, dict] = {}
    for folder in (FIRST / "main", SECOND / "main", RAW / "heldout_seed0", *sorted(RAW.glob("settled_dev_seed*"))):
        out.update(json.loads((folder / "summary.json").read_text())["datasets"])
    for folder in sorted(RAW.glob("third_seed*")):
        if not (folder / "summary.json").exists():
            continue
        out.update(json.loads((folder / "summary.json").read_text())["datasets"])
    return out


def sizes_of(runs: dict, seed: int) -> dict[str, tuple[int, int, int | None, int]]:
    """(pool size, top count, cap, seed) of each dataset in ``runs``."""
    datasets = pools()
    return {d: (datasets[d]["n"], datasets[d]["n_top"], CAP, seed) for d in sorted({d for d, _ in runs})}


def side_by_side(seed: int) -> dict:
    """The seed's runs with and without the probe, labelled ``probe on`` and ``probe off``."""
    return runs_of(RAW / f"heldout_seed{seed}", LABELS)


def old_runs(seed: int) -> dict:
    """The earlier snapshots' runs of the default and the four peers at ``seed``, held-out sets only."""
    keep = {p: p for p in (DEFAULT, *PEERS)}
    held = {d for d, v in pools().items() if v.get("held_out")}
    runs = merged([runs_of(folder, keep) for folder in OLD[seed]])
    return {k: v for k, v in runs.items() if k[0] in held}


def seeds_table() -> str:
    """Median rank and the planner's W/T/L against each peer, per seed, with and without the probe."""
    lines = [
        "| seed | botorch | median rank botorch | "
        + " | ".join(f"median rank {p}" for p in PEERS)
        + " | "
        + " | ".join(f"botorch vs {p} (W/T/L)" for p in PEERS)
        + " | botorch's stuck runs |",
        "|---|---|---|" + "---|" * (2 * len(PEERS)) + "---|",
    ]
    totals: dict[str, dict[str, list[int]]] = {}
    for seed in (0, 1, 2):
        if not (RAW / f"heldout_seed{seed}" / "summary.json").exists():
            continue
        new, old = side_by_side(seed), old_runs(seed)
        for label, variant in (("probe off (the default)", LABELS[OFF]), ("probe on", LABELS[DEFAULT])):
            ours = {(d, DEFAULT): rs for (d, p), rs in new.items() if p == variant}
            runs = merged([ours, old])  # the categorical sets from the side-by-side run, the others as before
            labels = [DEFAULT, *PEERS]
            sizes = sizes_of(runs, seed)
            comparisons = compare_all(sizes, runs, labels)
            stuck = sum(stuck_runs(runs[(d, DEFAULT)][:5], sizes[d][1]) for d in comparisons)
            table = rank_table(comparisons, labels)
            total = totals.setdefault(label, {p: [0, 0, 0] for p in PEERS})
            cells = default_row(table, DEFAULT, PEERS, total)
            lines.append(f"| {seed} ({len(comparisons)} sets) | {label} | " + " | ".join(cells) + f" | {stuck} |")
    for label, total in totals.items():
        cells = ["**all seeds**", label] + [""] * (1 + len(PEERS)) + ["{}/{}/{}".format(*total[p]) for p in PEERS]
        lines.append("| " + " | ".join(cells) + " | |")
    text = "\n".join(lines) + (
        "\n\nFirst group, seed 0: the planner's earlier 10 runs on its sets without categorical variables, "
        "paired with the peers' 5 by run index; stuck runs counted over the planner's first 5 runs of each set.\n"
    )
    (HERE / "seeds.md").write_text(text)
    return text


def reproduced() -> str:
    """Which runs without the probe repeat the earlier default runs (same seed and run index) exactly."""
    lines = ["| seed | dataset | runs repeated exactly | of |", "|---|---|---|---|"]
    for seed in (0, 1, 2):
        if not (RAW / f"heldout_seed{seed}" / "summary.json").exists():
            continue
        old = merged([load(folder)[1] for folder in OLD[seed]])
        for (d, p), rs in sorted(side_by_side(seed).items()):
            if p != LABELS[OFF] or (d, DEFAULT) not in old:
                continue
            before = {r.run: r.top_count for r in old[(d, DEFAULT)]}
            same = sum(before.get(r.run) == r.top_count for r in rs)
            lines.append(f"| {seed} | {d} | {same} | {len(rs)} |")
    text = "\n".join(lines) + "\n"
    (HERE / "reproduced.md").write_text(text)
    return text


def settled_table() -> str:
    """Per bench output of part 2: the settled probe against none, W/T/L, tops found (ratio) and stuck runs."""
    labels = {SETTLED: "settled probe", DEFAULT: "no probe"}
    lines = [
        "| runs | seed | sets | settled probe vs none (W/T/L) | tops found, settled / none (geometric mean of "
        "per-set ratios) | stuck runs settled / none |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("settled_dev", "third"):
        total = [0, 0, 0]
        for folder in sorted(RAW.glob(f"{kind}_seed*")):
            if not (folder / "summary.json").exists():
                continue
            seed = int(folder.name.rsplit("seed", 1)[1])
            runs = runs_of(folder, labels)
            out = HERE / "settled" / f"{kind.removeprefix('settled_')}_seed{seed}"
            out.mkdir(parents=True, exist_ok=True)
            sizes = sizes_of(runs, seed)
            comparisons = compare_all(sizes, runs)
            write_comparisons(out, comparisons, sizes, runs, {d: kind == "third" for d, _ in runs})
            ratios, stuck = [], [0, 0]
            for d in comparisons:
                found = [sum(r.top_count[-1] for r in runs[(d, lab)]) for lab in labels.values()]
                ratios.append((found[0] + 0.5) / (found[1] + 0.5))
                stuck = [
                    a + stuck_runs(runs[(d, lab)], sizes[d][1]) for a, lab in zip(stuck, labels.values(), strict=True)
                ]
            a = rank_table(comparisons, list(labels.values()))["settled probe"]["against"]["no probe"]
            total = [t + a[k] for t, k in zip(total, ("win", "tie", "loss"), strict=True)]
            geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            lines.append(
                f"| {kind} | {seed} | {len(comparisons)} | {a['win']}/{a['tie']}/{a['loss']} | {geo:.3f} | "
                f"{stuck[0]} / {stuck[1]} |"
            )
        lines.append(f"| {kind} | **all** | | {total[0]}/{total[1]}/{total[2]} | | |")
    note = "Tops found: each set's top candidates found by the cap, summed over its runs (+0.5 each)."
    text = "\n".join(lines) + "\n\n" + note + "\n"
    (HERE / "settled.md").write_text(text)
    return text


if __name__ == "__main__":
    for seed in (0, 1, 2):
        if (RAW / f"heldout_seed{seed}" / "summary.json").exists():
            folder = HERE / "before_after" / f"seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            runs = side_by_side(seed)
            print(write_tables(folder, sizes_of(runs, seed), runs, {d: True for d, _ in runs}))
    print(seeds_table())
    print(reproduced())
    print(settled_table())
