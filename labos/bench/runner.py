"""Run planners side by side on benchmark datasets, in parallel processes, and report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from labos.bench.dataset import Pool, load_dataset
from labos.bench.protocol import RunResult, metrics, run_once
from labos.core.campaign import PlannerSpec
from labos.core.errors import ConfigurationError
from labos.planners.registry import get_planner_class, option_problems


@dataclass(frozen=True)
class PlannerEntry:
    """A planner as named on the command line: ``name`` or ``name:key=value,key=value``."""

    label: str
    spec: PlannerSpec


def parse_options(text: str, context: str = "options") -> dict[str, Any]:
    """Parse ``key=value,key=value`` (values read as YAML scalars) into a dict.

    Raises
    ------
    ConfigurationError
        An item that is not ``key=value``; the message starts with ``context``.
    """
    options: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigurationError(f"{context}: option {item!r} must look like key=value")
        options[key.strip()] = yaml.safe_load(value)
    return options


def parse_planner(text: str) -> PlannerEntry:
    """Parse ``name[:key=value,...]``; values are read as YAML scalars.

    Raises
    ------
    ConfigurationError
        Unknown planner, malformed option or an option the planner does not accept.
    """
    name, _, rest = text.partition(":")
    options = parse_options(rest, f"planner {text!r}")
    try:
        cls = get_planner_class(name)
    except KeyError as exc:
        raise ConfigurationError(str(exc)) from None
    from labos.planners.base import BasePlanner

    if getattr(cls, "choose", BasePlanner.choose) is BasePlanner.choose:
        raise ConfigurationError(f"planner {name!r} has no pool-based mode")
    problems = option_problems(name, options)
    if problems:
        raise ConfigurationError("; ".join(f"planner {name!r}: option {k}: {m}" for k, m in problems))
    return PlannerEntry(label=text, spec=PlannerSpec(name=name, options=options))


@cache
def _pool(path: str) -> Pool:
    return load_dataset(path)


def _work(
    path: str,
    planner: dict[str, Any],
    label: str,
    run: int,
    seed: int,
    max_cycles: int | None = None,
    order: str = "shuffled",
) -> tuple[str, str, RunResult]:
    from labos.core.settings import apply_thread_limits

    apply_thread_limits(1)
    pool = _pool(path)
    return (
        path,
        label,
        run_once(pool, PlannerSpec.model_validate(planner), run, seed, max_cycles=max_cycles, order=order),
    )


def run_benchmark(
    datasets: Sequence[str | Path],
    planners: Sequence[PlannerEntry],
    *,
    runs: int,
    seed: int,
    jobs: int,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
    max_cycles: int | None = None,
    compare: bool = False,
    order: str = "shuffled",
) -> dict[str, Any]:
    """Run every planner ``runs`` times on every dataset; write the outputs under ``out``.

    ``max_cycles`` caps every run and ``order`` lists the candidates to the planners
    (see :func:`labos.bench.protocol.run_once`). With
    ``compare``, the planners are also compared (:mod:`labos.bench.compare`): the summary's
    ``compare`` entry and ``compare.md``.

    Returns the summary (also written to ``out/summary.json``).
    """
    from labos.bench.report import write_outputs

    pools = {str(Path(d)): load_dataset(d) for d in datasets}  # fail early on a bad dataset
    tasks = [(d, p, r) for d in pools for p in planners for r in range(runs)]
    results: dict[tuple[str, str], list[RunResult]] = {(d, p.label): [] for d in pools for p in planners}
    out.mkdir(parents=True, exist_ok=True)
    done = 0
    with (out / "runs.jsonl").open("w") as log:  # each run as it ends: an interrupted benchmark keeps its runs

        def finished(d: str, label: str, res: RunResult) -> None:
            nonlocal done
            results[(d, label)].append(res)
            log.write(json.dumps({"dataset": pools[d].spec.name, **asdict(res), "planner": label}) + "\n")
            log.flush()
            done += 1
            if progress:
                progress(done, len(tasks))

        if jobs <= 1:
            for d, p, r in tasks:
                finished(d, p.label, run_once(pools[d], p.spec, r, seed, max_cycles=max_cycles, order=order))
        else:
            with ProcessPoolExecutor(max_workers=jobs) as ex:
                futures = [
                    ex.submit(_work, d, p.spec.model_dump(), p.label, r, seed, max_cycles, order) for d, p, r in tasks
                ]
                for fut in as_completed(futures):
                    finished(*fut.result())
    for runs_of in results.values():
        runs_of.sort(key=lambda r: r.run)
    summary: dict[str, Any] = {
        "seed": seed,
        "runs": runs,
        "max_cycles": max_cycles,
        "candidate_order": order,
        "versions": versions(),
        "datasets": {},
    }
    for d, pool in pools.items():
        entry: dict[str, Any] = {
            "name": pool.spec.name,
            "n": pool.n,
            "n_top": pool.n_top,
            "ties": pool.spec.ties,
            "tied_at_cutoff": pool.tied_at_cutoff,
            "held_out": pool.spec.held_out,
            "citation": pool.spec.citation,
            "reference": pool.spec.reference,
            "planners": {},
        }
        for p in planners:
            entry["planners"][p.label] = {"seed": seed, **metrics(results[(d, p.label)], pool.n, pool.n_top)}
        summary["datasets"][pool.spec.name] = entry
    if compare:
        from labos.bench.compare import compare_dataset, markdown, rank_table

        labels = [p.label for p in planners]
        comparisons = {
            pool.spec.name: compare_dataset(
                {p: results[(d, p)] for p in labels},
                pool.n,
                pool.n_top,
                capped=max_cycles is not None and max_cycles < pool.n,
                seed=seed,
            )
            for d, pool in pools.items()
        }
        ranks = rank_table(comparisons, labels)
        summary["compare"] = {"datasets": comparisons, "ranks": ranks}
        (out / "compare.md").write_text(markdown(comparisons, ranks, labels))
    write_outputs(out, pools, planners, results, summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    runs_dump = {f"{pools[d].spec.name}/{label}": [asdict(r) for r in rs] for (d, label), rs in results.items()}
    (out / "runs.json").write_text(json.dumps(runs_dump))
    return summary


def versions() -> dict[str, str]:
    """Versions of labos and of the libraries the planners stand on (installed ones)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    libraries = ("numpy", "scikit-learn", "scikit-optimize", "torch", "botorch", "gpytorch", "nimo", "physbo")
    for dist in ("labos", *libraries, "baybe", "ax-platform"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def default_jobs() -> int:
    """Worker processes: the usable cores."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def planner_available(name: str) -> bool:
    """Whether a planner name resolves and can run (used to skip optional peers such as PHYSBO)."""
    try:
        get_planner_class(name)
    except KeyError:
        return False
    if name == "physbo":
        from labos.planners.physbo import nimo_available

        return nimo_available()
    if name in OPTIONAL_PEERS:
        from labos.planners.peers import peer_available

        return peer_available(name)
    return True


OPTIONAL_PEERS = {"physbo": "nimo", "baybe": "peers", "ax": "peers"}
"""Planners whose library is an optional extra of labos: the extra that installs it."""
