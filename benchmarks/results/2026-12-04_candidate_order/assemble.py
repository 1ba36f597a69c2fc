"""Assemble this folder's tables from its raw bench outputs (``raw/``) and the file-order runs before them.

Usage, from the repository root::

    .venv/bin/python benchmarks/results/2026-12-04_candidate_order/assemble.py

``raw/`` holds the runs with each run's candidates listed in its own seeded order
(``labos bench --order shuffled``, the default since this snapshot). The runs with the
candidates in the file's order are those of ``../2026-12-04_categorical`` and the folders it
reads; run index ``r`` draws the same two initial candidates and the same planner seed in
both, so the two orders pair run by run. Written here:

- ``main/``, ``baybe/``, ``physbo/``, ``ax/``: the tables of ``benchmarks/recompare.py``
  (``compare*.md``, ``stuck.md``) under the shuffled order: the default (``raw/default``, 10
  runs, after its space-filling rescue stopped breaking ties by position) against the peers,
  paired by run index up to the peer's run count;
- ``seed1/``, ``seed2/``: the default and the four peers of ``main/`` on the held-out sets
  at seeds 1 and 2;
- ``order/<planner>/``: each planner's file-order runs against its shuffled ones, and
  ``order.md``, one table of all of them (Top% by the cap, file order -> shuffled, and
  whether the change is beyond noise).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parent))
from recompare import merged, runs_of, write_tables  # noqa: E402

RAW = HERE / "raw"
CAT = RESULTS / "2026-12-04_categorical"
OLD = RESULTS / "2026-12-03_heldout_baselines"
BAYBE_AX = RESULTS / "2026-12-03_peers_baybe_ax"
DEFAULT = "botorch"
CAP = 40
PEERS = ("skopt", "gp-lcb", "rf-lcb", "random")


def write(folder: Path, runs: dict, seed: int = 0) -> str:
    """The tables of ``runs`` in ``folder`` (pool sizes from the shuffled main run)."""
    datasets = json.loads((RAW / "main" / "summary.json").read_text())["datasets"]
    used = {d for d, _ in runs}
    sizes = {d: (v["n"], v["n_top"], CAP, seed) for d, v in datasets.items() if d in used}
    held_out = {d: bool(v.get("held_out")) for d, v in datasets.items()}
    folder.mkdir(parents=True, exist_ok=True)
    return write_tables(folder, sizes, runs, held_out)


def file_order(planner: str) -> dict:
    """The planner's runs with the file's order (seed 0, the same cap), from the earlier snapshots."""
    keep = {planner: planner}
    if planner == DEFAULT:
        return runs_of(CAT / "raw" / "A", keep)
    if planner in PEERS:
        return merged([runs_of(CAT / "raw" / "B", keep), runs_of(OLD, keep)])
    if planner == "physbo":
        return merged([runs_of(CAT / "raw" / "physbo", keep), runs_of(CAT / "raw" / "physbo_tuned", keep)])
    if planner == "ax":
        return merged(
            [runs_of(CAT / "raw" / "ax", keep), runs_of(CAT / "raw" / "ax_tuned", keep), runs_of(BAYBE_AX, keep)]
        )
    return runs_of(CAT / "raw" / planner, keep)


def shuffled(planner: str) -> dict:
    """The planner's runs under the shuffled order (this folder; the default's from ``raw/default``, 10 runs)."""
    folder = RAW / ("default" if planner == DEFAULT else "main" if planner in PEERS else planner)
    return runs_of(folder, {planner: planner})


def order_table(planners: list[str]) -> str:
    """Top% by the cap (or AF 0.8), file order -> shuffled, per dataset and planner; * beyond noise."""
    from labos.bench.compare import compare_dataset

    datasets = json.loads((RAW / "main" / "summary.json").read_text())["datasets"]
    rows: dict[str, dict[str, str]] = {}
    counts: dict[str, list[int]] = {}
    for p in planners:
        before, after = f"{p} (file order)", f"{p} (shuffled)"
        both = merged(
            [
                {(d, before): rs for (d, _), rs in file_order(p).items()},
                {(d, after): rs for (d, _), rs in shuffled(p).items()},
            ]
        )
        names = {d for d, label in both if label == before} & {d for d, label in both if label == after}
        if not names:
            continue
        write(HERE / "order" / p, both)
        counts[p] = [0, 0, 0]
        for d in sorted(names):
            v = datasets[d]
            c = compare_dataset(
                {before: both[(d, before)], after: both[(d, after)]}, v["n"], v["n_top"], v["n"] > CAP, seed=0
            )
            better = next(iter(c["pairs"].values()))["better"]
            counts[p][0 if better == "tie" else (1 if better == after else 2)] += 1
            va, vb = c["planners"][before]["value"], c["planners"][after]["value"]
            unit = "" if c["metric"] == "top_at_cap" else "AF "
            rows.setdefault(d, {})[p] = f"{unit}{va:.3g} -> {vb:.3g}" + ("" if better == "tie" else " *")
    names = [p for p in planners if p in counts]
    lines = ["| dataset | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for d in sorted(rows):
        lines.append(f"| {d} | " + " | ".join(rows[d].get(p, "") for p in names) + " |")
    lines.append(
        "| **within noise / up / down** | " + " | ".join("{} / {} / {}".format(*counts[p]) for p in names) + " |"
    )
    text = "\n".join(lines) + (
        "\n\nTop% found by the 40-experiment cap, or AF at Top% 0.8 (AF) where both orders' median runs"
        " reach it by the cap; *: the change is beyond noise (paired bootstrap, 90 %, runs paired by index"
        " up to the smaller count).\n"
    )
    (HERE / "order.md").write_text(text)
    return text


if __name__ == "__main__":
    main_runs = merged([shuffled(DEFAULT), runs_of(RAW / "main", {p: p for p in PEERS})])
    print(write(HERE / "main", main_runs))
    for peer in ("baybe", "physbo", "ax"):
        runs = merged([shuffled(DEFAULT), shuffled(peer)])
        if any(p == peer for _, p in runs):
            write(HERE / peer, runs)
    for s in (1, 2):
        runs = runs_of(RAW / f"seed{s}", {p: p for p in (DEFAULT, *PEERS)})
        if runs:
            write(HERE / f"seed{s}", runs, seed=s)
    print(order_table([DEFAULT, *PEERS, "baybe", "physbo", "ax"]))
