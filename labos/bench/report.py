"""Benchmark outputs: Top% curves (PNG), EF/AF tables (CSV, markdown) and per-run counts."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labos.bench.dataset import Pool
from labos.bench.protocol import LEVELS, RunResult, top_fraction_curves

COLUMNS = (
    ["dataset", "planner", "runs", "N", "n_top"]
    + [f"cycles_{a}" for a in LEVELS]
    + [f"af_{a}" for a in LEVELS]
    + ["ef_max", "top_at_cap", "stuck_runs", "ask_tell_seconds_mean", "wall_seconds_per_run", "ask_seconds_mean"]
)


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, d in summary["datasets"].items():
        for label, m in d["planners"].items():
            rows.append({"dataset": name, "planner": label, "N": d["n"], "n_top": d["n_top"], **m})
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def write_outputs(
    out: Path,
    pools: dict[str, Pool],
    planners: Sequence[Any],
    results: dict[tuple[str, str], list[RunResult]],
    summary: dict[str, Any],
) -> None:
    """Write ``results.csv``, ``results.md``, one ``<dataset>_top.png`` and per-run counts."""
    rows = _rows(summary)
    with (out / "results.csv").open("w", newline="") as fh:
        dict_writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        dict_writer.writeheader()
        dict_writer.writerows(rows)
    lines = [
        "| dataset | planner | runs | N | cycles to Top% 0.5 / 0.8 / 1.0 | AF 0.5 / 0.8 / 1.0 | EF max "
        "| published AF 0.8 | runs' cycles to Top% 0.5 (p5 / p50 / p95) | stuck runs | ask+tell s/cycle | wall s/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = summary["datasets"][r["dataset"]]["reference"].get("af_0.8")
        cycles = " / ".join(_fmt(r[f"cycles_{a}"]) for a in LEVELS)
        afs = " / ".join(_fmt(r[f"af_{a}"]) for a in LEVELS)
        lines.append(
            f"| {r['dataset']} | {r['planner']} | {r['runs']} | {r['N']} | {cycles} | {afs} | "
            f"{_fmt(r['ef_max'])} | {_fmt(ref)} | {' / '.join(_fmt(v) for v in r['run_spread_0.5'])} | "
            f"{_fmt(r.get('stuck_runs'))} | {_fmt(r['ask_tell_seconds_mean'])} | "
            f"{_fmt(r['wall_seconds_per_run'])} |"
        )
    agents = [r for r in rows if r.get("agent")]
    if agents:
        lines += [
            "",
            "| dataset | planner | Top% at cap | first reply valid | fallback points | model's points | "
            "model s/ask | ask s (all) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in agents:
            a = r["agent"]
            lines.append(
                f"| {r['dataset']} | {r['planner']} | {_fmt(r.get('top_at_cap'))} | "
                f"{a['first_try_valid_pct']:.0f} % | {a['fallback_pct']:.0f} % | {a['agent_points_pct']:.0f} % | "
                f"{a['model_seconds_per_ask']:.2f} | {_fmt(r['ask_seconds_mean'])} |"
            )
    (out / "results.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for d, pool in pools.items():
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        horizon = 1
        for p in planners:
            res = results[(d, p.label)]
            curves = top_fraction_curves(res, pool.n, pool.n_top)
            med = np.median(curves, axis=0)
            lo, hi = np.percentile(curves, [5, 95], axis=0)
            i = np.arange(1, pool.n + 1)
            line = ax.plot(i, med, lw=2, label=p.label)[0]
            ax.fill_between(i, lo, hi, color=line.get_color(), alpha=0.15)
            reach = np.nonzero(lo >= 1.0)[0]
            horizon = max(horizon, int(reach[0]) + 1 if reach.size else pool.n)
        i = np.arange(1, pool.n + 1)
        ax.plot(i, i / pool.n, "k--", lw=1, label="random search (i/N)")
        ax.set_xlim(1, min(pool.n, int(horizon * 1.3) + 5))
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("experiments (including the 2 initial)")
        ax.set_ylabel("Top% (fraction of top candidates found)")
        ax.set_title(
            f"{pool.spec.name}: N={pool.n}, top {pool.n_top}; aggregated curve, 5-95% band of runs", fontsize=10
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(out / f"{pool.spec.name}_top.png")
        plt.close(fig)
        for p in planners:
            res = results[(d, p.label)]
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in p.label)
            with (out / f"{pool.spec.name}_{safe}_topcount.csv").open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["run", *(f"cycle_{k}" for k in range(1, pool.n + 1))])
                for run in res:
                    counts = run.top_count + [pool.n_top] * (pool.n - len(run.top_count))
                    writer.writerow([run.run, *counts])
