"""Assemble this folder's comparison tables from its raw bench outputs (``raw/``).

Usage, from the repository root::

    .venv/bin/python benchmarks/results/2026-12-04_categorical/assemble.py

Each table is a staging folder (``summary.json`` + ``runs.jsonl``) handed to
``benchmarks/recompare.py``, which writes ``compare.md``, ``compare_held_out.md``,
``compare_tuned.md`` and ``stuck.md`` into it. Runs are paired by run index (the same
seed and the same initial candidates for every planner at one index) up to the smallest
run count. Nothing is run again: the peers' runs of 2026-12-03 are read from their folders.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parent))
from recompare import load, main  # noqa: E402

DEFAULT = "botorch"
ONEHOT = "botorch:categorical_kernel=onehot,stall_cycles=0"


def runs_of(folder: Path, keep: dict[str, str], datasets: set[str] | None = None, max_runs: int | None = None):
    """The runs of a bench output, planners renamed by ``keep`` (old -> new), others left out (none if absent)."""
    if not (folder / "summary.json").exists():
        return {}
    _, runs = load(folder)
    out = {}
    for (dataset, planner), rs in runs.items():
        if planner in keep and (datasets is None or dataset in datasets):
            rs = sorted(rs, key=lambda r: r.run)[:max_runs]
            out[(dataset, keep[planner])] = rs
    return out


def write(name: str, parts: list[dict], seed: int = 0) -> None:
    """A staging folder of the merged parts (the first part wins a clash), then its tables."""
    stage = HERE / name
    stage.mkdir(exist_ok=True)
    merged: dict = {}
    for part in parts:
        for key, rs in part.items():
            merged.setdefault(key, rs)
    datasets = json.loads((HERE / "raw" / "A" / "summary.json").read_text())["datasets"]
    used = {d for d, _ in merged}
    summary = {
        "seed": seed,
        "max_cycles": 40,
        "datasets": {d: {k: v for k, v in datasets[d].items() if k != "planners"} for d in datasets if d in used},
    }
    (stage / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    with (stage / "runs.jsonl").open("w") as f:
        for (dataset, planner), rs in merged.items():
            for r in rs:
                row = asdict(r)
                row.update(dataset=dataset, planner=planner)
                f.write(json.dumps(row) + "\n")
    main([stage])
    (stage / "runs.jsonl").unlink()  # the raw runs live in raw/ and 2026-12-03_*/


if __name__ == "__main__":
    raw = HERE / "raw"
    old = RESULTS / "2026-12-03_heldout_baselines"
    baybe_ax = RESULTS / "2026-12-03_peers_baybe_ax"
    peers = {p: p for p in ("skopt", "gp-lcb", "rf-lcb", "random")}
    # the new default against the paper's baselines, skopt and random (5 runs, seed 0)
    write("main", [runs_of(raw / "A", {DEFAULT: DEFAULT}), runs_of(raw / "B", peers), runs_of(old, peers)])
    # against BayBE and Ax (3 runs, seed 0, the six sets they were run on)
    others = {p: p for p in ("baybe", "ax", "random")}
    write("baybe_ax", [runs_of(raw / "A", {DEFAULT: DEFAULT}), runs_of(baybe_ax, others)])
    # against BayBE, 5 runs, all 22 sets (BayBE's own run, raw/baybe)
    if (raw / "baybe").exists():
        write("baybe", [runs_of(raw / "A", {DEFAULT: DEFAULT}), runs_of(raw / "baybe", {"baybe": "baybe"})])
    # against Ax, 3 runs: all 22 sets (raw/ax, raw/ax_tuned; four sets' runs from 2026-12-03)
    if (raw / "ax").exists():
        write(
            "ax",
            [
                runs_of(raw / "A", {DEFAULT: DEFAULT}),
                runs_of(raw / "ax", {"ax": "ax"}),
                runs_of(raw / "ax_tuned", {"ax": "ax"}),
                runs_of(baybe_ax, {"ax": "ax"}),
            ],
        )
    # against NIMS-OS PHYSBO (nimo), 5 runs, all 22 sets (raw/physbo, raw/physbo_tuned)
    if (raw / "physbo").exists():
        write(
            "physbo",
            [
                runs_of(raw / "A", {DEFAULT: DEFAULT}),
                runs_of(raw / "physbo", {"physbo": "physbo"}),
                runs_of(raw / "physbo_tuned", {"physbo": "physbo"}),
            ],
        )
    # before / after: the default of 2026-12-03 (one-hot, no rescue) against today's (5 runs, seed 0)
    write("before_after", [runs_of(raw / "A", {DEFAULT: DEFAULT}), runs_of(old, {DEFAULT: "botorch-before"})])
    # ablation, 10 runs: the same model with one-hot categories and no rescue
    write("ten_runs", [runs_of(raw / "A", {DEFAULT: DEFAULT, ONEHOT: "botorch-onehot"})])
    # other seeds (held-out sets only, 5 runs each)
    for s in (1, 2):
        if (raw / f"seed{s}").exists():
            write(f"seed{s}", [runs_of(raw / f"seed{s}", {DEFAULT: DEFAULT, ONEHOT: "botorch-onehot"})], seed=s)
