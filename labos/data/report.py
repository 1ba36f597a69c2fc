"""Campaign reports: best-so-far tables and the convergence plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from labos.core.campaign import Objective
from labos.data.store import ExperimentRecord


def best_so_far(records: Sequence[ExperimentRecord], objective: Objective) -> list[float | None]:
    """For each experiment in order, the best objective value seen up to it."""
    out: list[float | None] = []
    best: float | None = None
    for r in records:
        if r.status == "completed" and r.objectives and objective.name in r.objectives:
            v = r.objectives[objective.name]
            if best is None or objective.better(v, best):
                best = v
        out.append(best)
    return out


def best_record(records: Sequence[ExperimentRecord], objective: Objective) -> ExperimentRecord | None:
    """The successful experiment with the best value of ``objective``."""
    best: ExperimentRecord | None = None
    for r in records:
        if r.status != "completed" or not r.objectives or objective.name not in r.objectives:
            continue
        if best is None or objective.better(r.objectives[objective.name], best.objectives[objective.name]):  # type: ignore[index]
            best = r
    return best


def convergence_plot(records: Sequence[ExperimentRecord], objective: Objective, path: Path, title: str) -> Path:
    """Write a PNG of every objective value and the best so far against experiment number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ok = [(r.seq, r.objectives[objective.name]) for r in records if r.status == "completed" and r.objectives]
    failed = [r.seq for r in records if r.status == "failed"]
    if ok:
        seqs, values = zip(*ok, strict=True)
        ax.scatter(seqs, values, s=18, color="tab:blue", alpha=0.6, label="experiment")
    best = best_so_far(records, objective)
    xs = [r.seq for r, b in zip(records, best, strict=True) if b is not None]
    ys = [b for b in best if b is not None]
    if xs:
        ax.step(xs, ys, where="post", color="tab:red", lw=2, label="best so far")
    vals = [v for _, v in ok]
    if vals and min(vals) > 0 and max(vals) / min(vals) > 100:
        ax.set_yscale("log")  # improvements near the optimum stay visible
    if failed:
        ax.scatter(failed, [ax.get_ylim()[0]] * len(failed), marker="x", color="k", clip_on=False, label="failed")
    unit = f" [{objective.unit}]" if objective.unit else ""
    ax.set_xlabel("experiment")
    ax.set_ylabel(f"{objective.name}{unit} ({objective.direction})")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a campaign stopped before its first result has nothing to label
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
