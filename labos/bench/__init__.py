"""``labos bench``: pool-based benchmarks of planners on published experimental datasets."""

from labos.bench.dataset import DatasetSpec, Pool, load_dataset
from labos.bench.protocol import RunResult, metrics, run_once
from labos.bench.runner import PlannerEntry, parse_planner, run_benchmark

__all__ = [
    "DatasetSpec",
    "PlannerEntry",
    "Pool",
    "RunResult",
    "load_dataset",
    "metrics",
    "parse_planner",
    "run_benchmark",
    "run_once",
]
