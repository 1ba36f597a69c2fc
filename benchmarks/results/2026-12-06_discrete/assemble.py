"""Assemble this folder's tables from ``raw/seed0..2`` (written by ``run.sh``).

Usage, from the repository root::

    .venv/bin/python benchmarks/results/2026-12-06_discrete/assemble.py

Each seed's bench run holds the three lnp3 targets twice — the amounts declared as
Olympus declares them (categorical) and as discrete levels — and drug_loading a third time
with the amounts as plain numbers (``../2026-12-06_heldout2/lnp3_numeric``), every planner
on every declaration in one run. Written here:

- ``seed0..2/``: every dataset's planner comparison (``compare.md``, ``stuck.md``);
- ``declarations.md``: per target, planner and seed, Top% by the cap under each declaration,
  the levels declaration against the categorical one (bootstrap 90 % interval of the
  difference over runs; ``≈`` within noise), and stuck runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from recompare import compare_all, load, write_comparisons  # noqa: E402

from labos.bench.compare import compare_dataset  # noqa: E402
from labos.bench.protocol import stuck_runs  # noqa: E402

RAW = HERE / "raw"
PLANNERS = ("botorch", "skopt", "gp-lcb", "rf-lcb", "random")
TARGETS = {  # target: (declaration label, dataset name) in the table's order
    "drug_loading": [("categories", "lnp3"), ("levels", "lnp3_levels_drug_loading"), ("numbers", "lnp3_numeric")],
    "encap_efficiency": [("categories", "lnp3_encap_efficiency"), ("levels", "lnp3_levels_encap_efficiency")],
    "particle_diameter": [("categories", "lnp3_particle_diameter"), ("levels", "lnp3_levels_particle_diameter")],
}


def main() -> None:
    """Write declarations.md and the per-seed comparisons; print declarations.md."""
    lines = [
        "# lnp3's three targets under each declaration of its four amounts",
        "",
        "Top% by the 40-experiment cap, mean of 5 runs, with the number of stuck runs in brackets;",
        "`levels − categories`: the difference with its bootstrap 90 % interval over runs (`≈`: within",
        "noise). Every cell of a row comes from the same bench run (one per seed).",
        "",
    ]
    seeds = []  # each bench output read once: (seed, its datasets' sizes, its runs sorted by index)
    for seed_dir in sorted(RAW.glob("seed*")):
        summary, runs = load(seed_dir)
        seeds.append((seed_dir.name, summary, {k: sorted(v, key=lambda r: r.run) for k, v in runs.items()}))
    totals: dict[tuple[str, str], int] = {}
    for target, decls in TARGETS.items():
        lines += [
            f"## {target}",
            "",
            "| planner | seed | " + " | ".join(label for label, _ in decls) + " | levels − categories |",
            "|---|---|" + "---|" * (len(decls) + 1),
        ]
        for planner in PLANNERS:
            for _, summary, runs in seeds:
                seed = int(summary["seed"])
                info = summary["datasets"]
                cells = []
                for label, name in decls:
                    rs = runs[(name, planner)]
                    n_top = info[name]["n_top"]
                    stuck = stuck_runs(rs, n_top)
                    totals[(target, label)] = totals.get((target, label), 0) + (stuck if planner == "botorch" else 0)
                    top = sum(r.top_count[-1] for r in rs) / len(rs) / n_top
                    cells.append(f"{top:.2f} ({stuck})")
                cat, lev = decls[0][1], decls[1][1]
                cmp = compare_dataset(
                    {"levels": runs[(lev, planner)], "categories": runs[(cat, planner)]},
                    info[cat]["n"],
                    info[cat]["n_top"],
                    True,
                    seed=seed,
                )
                pair = cmp["pairs"]["categories | levels"]
                diff, lo, hi = -pair["diff"], -pair["hi"], -pair["lo"]
                mark = "≈" if pair["better"] == "tie" else ("**better**" if pair["better"] == "levels" else "worse")
                cells.append(f"{diff:+.3f} [{lo:+.3f}, {hi:+.3f}] {mark}")
                lines.append(f"| {planner} | {seed} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## The default planner's stuck runs, all seeds (of 15 per cell)", ""]
    lines += ["| target | " + " | ".join(label for label, _ in TARGETS["drug_loading"]) + " |", "|---|---|---|---|"]
    for target, decls in TARGETS.items():
        cells = [str(totals[(target, label)]) for label, _ in decls] + ["-"] * (3 - len(decls))
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    (HERE / "declarations.md").write_text("\n".join(lines) + "\n")

    for folder, summary, runs in seeds:
        seed = int(summary["seed"])
        sizes = {name: (d["n"], d["n_top"], summary.get("max_cycles"), seed) for name, d in summary["datasets"].items()}
        out = HERE / folder
        out.mkdir(exist_ok=True)
        held = {name: bool(d.get("held_out")) for name, d in summary["datasets"].items()}
        write_comparisons(out, compare_all(sizes, runs), sizes, runs, held)
    print((HERE / "declarations.md").read_text())


if __name__ == "__main__":
    main()
