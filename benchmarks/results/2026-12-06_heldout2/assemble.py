"""Assemble this folder's tables from its raw bench outputs (``raw/``) and the first held-out group's.

Usage, from the repository root::

    .venv/bin/python benchmarks/results/2026-12-06_heldout2/assemble.py

``raw/`` holds runs on the second held-out group (eight Olympus sets imported, and never
benched, before these runs), 40-experiment cap, candidates in each run's own order:
``main`` (the default and the paper's baselines, skopt, random; seed 0), ``seed1``,
``seed2``, ``baybe``, ``physbo``, ``ax`` (seed 0), ``uncapped`` (the four pools of at most
101 candidates run until every top candidate is found) and ``lnp3_numeric_seed0..2``. Written here:

- ``all/``: every planner on the eight sets at seed 0 (5 runs each, paired by run index);
- ``seed0/``, ``seed1/``, ``seed2/``: the default and the four peers of ``main`` per seed;
- ``uncapped/``: the small pools to exhaustion (AF at Top% 0.8 instead of Top% by the cap);
- ``heldout22/``: both held-out groups at seed 0, the default and the four peers
  (first group: ``../2026-12-04_candidate_order/raw/default`` and ``raw/main``);
- ``seeds.md``: median rank and the default's wins/ties/losses per seed, both groups;
- ``lnp3_numeric/seed*/``: lnp3 as Olympus declares it (five categorical variables) beside the
  same pool with its four amounts declared as numbers (``lnp3_numeric/dataset.yaml``), seeds 0–2.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parent))
from recompare import compare_all, default_row, merged, runs_of, write_tables  # noqa: E402

from labos.bench.compare import rank_table  # noqa: E402

RAW = HERE / "raw"
FIRST = RESULTS / "2026-12-04_candidate_order" / "raw"
DEFAULT = "botorch"
PEERS = ("skopt", "gp-lcb", "rf-lcb", "random")
OTHERS = ("baybe", "physbo", "ax")
CAP = 40


@functools.cache
def pools() -> dict[str, dict]:
    """Pool size, top count and held-out mark of every dataset of both groups."""
    out: dict[str, dict] = {}
    for folder in (RAW / "main", FIRST / "main", *sorted(RAW.glob("lnp3_numeric_seed*"))):
        out.update(json.loads((folder / "summary.json").read_text())["datasets"])
    return out


def held_out() -> set[str]:
    """The held-out datasets of both groups."""
    return {d for d, v in pools().items() if v.get("held_out")}


def first_group_seed0() -> dict:
    """The first group's seed-0 runs: the default's 10 (``raw/default``) and the peers' 5 (``raw/main``)."""
    keep = {p: p for p in (DEFAULT, *PEERS)}
    return merged([runs_of(FIRST / "default", {DEFAULT: DEFAULT}), runs_of(FIRST / "main", keep)])


def sizes_of(runs: dict, seed: int, cap: int | None) -> dict[str, tuple[int, int, int | None, int]]:
    """(pool size, top count, cap, seed) of each dataset in ``runs``."""
    datasets = pools()
    return {d: (datasets[d]["n"], datasets[d]["n_top"], cap, seed) for d in sorted({d for d, _ in runs})}


def write(folder: Path, runs: dict, seed: int = 0, cap: int | None = CAP) -> str:
    """The tables of ``runs`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    held_out = {d: bool(v.get("held_out")) for d, v in pools().items()}
    return write_tables(folder, sizes_of(runs, seed, cap), runs, held_out)


def ranks(runs: dict, seed: int) -> dict:
    """The rank table (median rank, W/T/L) of ``runs``, every planner on every dataset it shares."""
    labels = list(dict.fromkeys(p for _, p in runs))
    return rank_table(compare_all(sizes_of(runs, seed, CAP), runs, labels), labels)


def seeds_table() -> str:
    """Median rank of each planner and the default's W/T/L against each, per seed and held-out group."""
    keep = {p: p for p in (DEFAULT, *PEERS)}
    groups = {
        "second group (8)": {0: RAW / "main", 1: RAW / "seed1", 2: RAW / "seed2"},
        "first group (14)": {0: None, 1: FIRST / "seed1", 2: FIRST / "seed2"},
    }
    first0 = first_group_seed0()
    held = held_out()
    lines = [
        "| held-out sets | seed | "
        + " | ".join(f"median rank {p}" for p in (DEFAULT, *PEERS))
        + " | "
        + " | ".join(f"default vs {p} (W/T/L)" for p in PEERS)
        + " |",
        "|---|---|" + "---|" * (2 * len(PEERS) + 1),
    ]
    total = {p: [0, 0, 0] for p in PEERS}
    for group, folders in groups.items():
        for seed, folder in folders.items():
            if folder is not None and not (folder / "summary.json").exists():
                continue
            runs = first0 if folder is None else runs_of(folder, keep)
            runs = {k: v for k, v in runs.items() if k[0] in held}
            if not runs:
                continue
            table = ranks(runs, seed)
            cells = default_row(table, DEFAULT, PEERS, total)
            lines.append(f"| {group} | {seed} | " + " | ".join(cells) + " |")
    cells = ["**all rows**", ""] + [""] * (1 + len(PEERS)) + ["{}/{}/{}".format(*total[p]) for p in PEERS]
    lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\nFirst group, seed 0: the default's 10 runs paired with the peers' 5 by run index.\n"
    (HERE / "seeds.md").write_text(text)
    return text


if __name__ == "__main__":
    keep = {p: p for p in (DEFAULT, *PEERS)}
    main = runs_of(RAW / "main", keep)
    others = merged([runs_of(RAW / p, {p: p}) for p in OTHERS if (RAW / p / "summary.json").exists()])
    print(write(HERE / "all", merged([main, others])))
    for s in (0, 1, 2):
        if s == 0 or (RAW / f"seed{s}" / "summary.json").exists():
            runs = main if s == 0 else runs_of(RAW / f"seed{s}", keep)
            write(HERE / f"seed{s}", runs, seed=s)
    if (RAW / "uncapped" / "summary.json").exists():
        print(write(HERE / "uncapped", runs_of(RAW / "uncapped", keep), cap=None))
    both = merged([main, first_group_seed0()])
    print(write(HERE / "heldout22", {k: v for k, v in both.items() if k[0] in held_out()}))
    print(seeds_table())
    for folder in sorted(RAW.glob("lnp3_numeric_seed*")):
        seed = int(folder.name.removeprefix("lnp3_numeric_seed"))
        print(write(HERE / "lnp3_numeric" / f"seed{seed}", runs_of(folder, keep), seed=seed))
