"""Planners compared on benchmark runs: bootstrap intervals over runs, differences within noise, ranks.

Per dataset, one figure of merit per planner, from its runs:

- ``AF 0.8`` when every run could exhaust the pool: ``ceil(0.8 N) / median(cycles)``, where
  ``cycles`` is each run's experiment count to reach Top% 0.8 (a run's own curve, not the
  aggregated one, so that runs can be resampled). Higher is better.
- ``Top% at cap`` when runs were capped (``--max-cycles`` below the pool size) and some
  planner's median run did not reach Top% 0.8 by the cap: the mean over runs of the
  fraction of top candidates found by the cap. Higher is better. (When every planner's
  median run reached it, AF 0.8 is still known and is the sharper figure: runs that
  did not reach it count as later than any that did.)

Its 90 % interval comes from resampling the runs (bootstrap, 2,000 draws). Two planners
are compared by a *paired* bootstrap: run ``r`` of every planner starts from the same two
initial candidates, so the same resampled run indices are used for both; their difference
is within noise when its 90 % interval contains 0. Across datasets, each planner's rank
(1 = best figure of merit, ties averaged), its median rank, and wins/ties/losses against
each peer (a tie: within noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labos.bench.protocol import RunResult

DRAWS = 2000
LEVEL = 0.8
INTERVAL = (5.0, 95.0)


def run_values(results: Sequence[RunResult], n: int, n_top: int, capped: bool) -> NDArray[np.float64]:
    """Per run: cycles to Top% ``LEVEL`` (``inf`` if not reached), or with ``capped`` Top% at the cap."""
    out = []
    for r in results:
        counts = np.asarray(r.top_count, dtype=float) / n_top
        if capped:
            out.append(1.0 if not r.capped else float(counts[-1]))
        else:
            hits = np.nonzero(counts >= LEVEL - 1e-12)[0]
            out.append(float(hits[0] + 1) if hits.size else math.inf)
    return np.asarray(out)


def statistic(values: NDArray[np.float64], n: int, capped: bool) -> float:
    """The figure of merit of a set of runs' values (see the module docstring)."""
    if capped:
        return float(np.mean(values))
    med = float(np.median(values))
    return math.ceil(LEVEL * n) / med if math.isfinite(med) else 0.0


def _draws(runs: int, rng: np.random.Generator) -> NDArray[np.int64]:
    return rng.integers(0, runs, size=(DRAWS, runs))


def compare_dataset(
    results: Mapping[str, Sequence[RunResult]], n: int, n_top: int, capped: bool, seed: int = 0
) -> dict[str, Any]:
    """Each planner's figure of merit with its interval, and which pairs differ beyond noise."""
    labels = list(results)
    if capped:  # AF is still known when every planner's median run reached the level before the cap
        cycles = {p: run_values(results[p], n, n_top, False) for p in labels}
        capped = not all(math.isfinite(float(np.median(c))) for c in cycles.values())
    values = {p: run_values(results[p], n, n_top, capped) for p in labels}
    runs = min(len(v) for v in values.values())
    idx = _draws(runs, np.random.default_rng(seed))
    boot = {p: np.array([statistic(values[p][:runs][i], n, capped) for i in idx]) for p in labels}
    out: dict[str, Any] = {
        "metric": "top_at_cap" if capped else f"af_{LEVEL}",
        "runs": runs,
        "planners": {},
        "pairs": {},
    }
    for p in labels:
        lo, hi = np.percentile(boot[p], INTERVAL)
        out["planners"][p] = {"value": statistic(values[p][:runs], n, capped), "lo": float(lo), "hi": float(hi)}
    for a in labels:
        for b in labels:
            if a < b:
                lo, hi = np.percentile(boot[a] - boot[b], INTERVAL)
                diff = out["planners"][a]["value"] - out["planners"][b]["value"]
                verdict = "tie" if lo <= 0 <= hi else (a if diff > 0 else b)
                out["pairs"][f"{a} | {b}"] = {"diff": float(diff), "lo": float(lo), "hi": float(hi), "better": verdict}
    values_now = {p: out["planners"][p]["value"] for p in labels}
    order = sorted(labels, key=lambda p: -values_now[p])
    ranks: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values_now[order[j + 1]] == values_now[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    for p in labels:
        out["planners"][p]["rank"] = ranks[p]
    return out


def outcome(cmp: Mapping[str, Any], a: str, b: str) -> str:
    """``win``, ``tie`` or ``loss`` of planner ``a`` against ``b`` on one dataset's comparison."""
    key = f"{a} | {b}" if a < b else f"{b} | {a}"
    better = cmp["pairs"][key]["better"]
    return "tie" if better == "tie" else ("win" if better == a else "loss")


def rank_table(comparisons: Mapping[str, Mapping[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """Median rank per planner across datasets and its wins/ties/losses against each peer."""
    table: dict[str, Any] = {}
    for a in labels:
        ranks = [c["planners"][a]["rank"] for c in comparisons.values()]
        wtl = {}
        for b in labels:
            if b != a:
                res = [outcome(c, a, b) for c in comparisons.values()]
                wtl[b] = {k: res.count(k) for k in ("win", "tie", "loss")}
        table[a] = {"median_rank": float(np.median(ranks)), "ranks": ranks, "against": wtl}
    return table


def markdown(comparisons: Mapping[str, Mapping[str, Any]], ranks: Mapping[str, Any], labels: Sequence[str]) -> str:
    """The per-dataset table (figure of merit [90 % interval], beyond-noise marks) and the rank table."""

    def fmt(v: float) -> str:
        return f"{v:.3g}"

    lines = [
        "| dataset | metric | runs | " + " | ".join(labels) + " |",
        "|---|---|---|" + "---|" * len(labels),
    ]
    for name, c in comparisons.items():
        best = max(labels, key=lambda p: c["planners"][p]["value"])
        cells = []
        for p in labels:
            e = c["planners"][p]
            mark = ""
            if p == best:
                mark = " **best**"
            elif outcome(c, p, best) == "tie":
                mark = " ≈"
            cells.append(f"{fmt(e['value'])} [{fmt(e['lo'])}, {fmt(e['hi'])}]{mark}")
        lines.append(f"| {name} | {c['metric']} | {c['runs']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "≈: within noise of the best (the 90 % interval of the paired difference contains 0).",
        "",
        "| planner | median rank | " + " | ".join(f"vs {b} (W/T/L)" for b in labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    for a in labels:
        r = ranks[a]
        cells = []
        for b in labels:
            if b == a:
                cells.append("-")
            else:
                w = r["against"][b]
                cells.append(f"{w['win']}/{w['tie']}/{w['loss']}")
        lines.append(f"| {a} | {r['median_rank']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
