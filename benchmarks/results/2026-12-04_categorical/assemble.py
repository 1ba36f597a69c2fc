"""Assemble this folder's comparison tables from its raw bench outputs (``raw/``).

Usage, from the repository root::

    .venv/bin/python benchmarks/results/2026-12-04_categorical/assemble.py

Each table's folder gets ``compare.md``, ``compare_held_out.md``, ``compare_tuned.md`` and
``stuck.md`` from ``benchmarks/recompare.py``'s :func:`write_tables`. Runs are paired by run
index (the same seed and the same initial candidates for every planner at one index) up to
the smallest run count. Nothing is run again: the peers' runs of 2026-12-03 are read from
their folders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parent))
from recompare import runs_of, write_tables  # noqa: E402

RAW = HERE / "raw"
OLD = RESULTS / "2026-12-03_heldout_baselines"
BAYBE_AX = RESULTS / "2026-12-03_peers_baybe_ax"
DEFAULT = "botorch"
ONEHOT = "botorch:categorical_kernel=onehot,stall_cycles=0"
CAP = 40


def write(name: str, parts: list[dict], seed: int = 0) -> None:
    """The tables of the merged parts (the first part wins a clash) in folder ``name``."""
    merged: dict = {}
    for part in parts:
        for key, rs in part.items():
            merged.setdefault(key, rs)
    datasets = json.loads((RAW / "A" / "summary.json").read_text())["datasets"]
    used = {d for d, _ in merged}
    sizes = {d: (v["n"], v["n_top"], CAP, seed) for d, v in datasets.items() if d in used}
    held_out = {d: bool(v.get("held_out")) for d, v in datasets.items()}
    (HERE / name).mkdir(exist_ok=True)
    write_tables(HERE / name, sizes, merged, held_out)


def against(name: str, peer: str, *folders: Path) -> None:
    """The default (runs of ``raw/A``) against one peer whose runs lie in ``folders``."""
    write(name, [runs_of(RAW / "A", {DEFAULT: DEFAULT}), *(runs_of(f, {peer: peer}) for f in folders)])


if __name__ == "__main__":
    peers = {p: p for p in ("skopt", "gp-lcb", "rf-lcb", "random")}
    # the new default against the paper's baselines, skopt and random (5 runs, seed 0)
    write("main", [runs_of(RAW / "A", {DEFAULT: DEFAULT}), runs_of(RAW / "B", peers), runs_of(OLD, peers)])
    # against BayBE, Ax and random side by side (3 runs, seed 0, the six sets they were run on)
    write(
        "baybe_ax",
        [runs_of(RAW / "A", {DEFAULT: DEFAULT}), runs_of(BAYBE_AX, {p: p for p in ("baybe", "ax", "random")})],
    )
    # against BayBE (5 runs), Ax (3 runs; four sets' runs from 2026-12-03), NIMS-OS PHYSBO (5 runs): all 22 sets
    against("baybe", "baybe", RAW / "baybe")
    against("ax", "ax", RAW / "ax", RAW / "ax_tuned", BAYBE_AX)
    against("physbo", "physbo", RAW / "physbo", RAW / "physbo_tuned")
    # before / after: the default of 2026-12-03 (one-hot, no rescue) against today's (5 runs, seed 0)
    write("before_after", [runs_of(RAW / "A", {DEFAULT: DEFAULT}), runs_of(OLD, {DEFAULT: "botorch-before"})])
    # ablation, 10 runs: the same model with one-hot categories and no rescue; and the other seeds
    # (held-out sets only, 5 runs each)
    both = {DEFAULT: DEFAULT, ONEHOT: "botorch-onehot"}
    write("ten_runs", [runs_of(RAW / "A", both)])
    for s in (1, 2):
        write(f"seed{s}", [runs_of(RAW / f"seed{s}", both)], seed=s)
