"""Copy Olympus datasets into ``benchmarks/datasets/`` with a ``dataset.yaml`` each.

Usage: ``python benchmarks/datasets/olympus_import.py SOURCE_DIR NAME...`` where
``SOURCE_DIR/olympus_NAME/`` holds Olympus's ``config.json``, the headerless ``data.csv``
and a ``SOURCE.md`` (repository, commit, licence, original publication). The
``dataset.yaml`` declares what ``config.json`` says: the columns, the search space
(continuous -> real over the declared range, categorical -> its options, ``simplex`` ->
one composition when the rows sum to 1) and the first measurement with its goal as the
objective. Every set imported so is ``held_out``: never used to choose the default
planner's settings. Ties at the top 5 % cut-off count ``all`` (yields are often rounded).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OLYMPUS = "Häse et al., Mach. Learn.: Sci. Technol. 2, 035021 (2021), Olympus (MIT licence)"


def _space(cfg: dict[str, Any], rows: list[list[str]]) -> dict[str, Any]:
    params = cfg["parameters"]
    names = [p["name"] for p in params]
    if cfg.get("constraints", {}).get("parameters") == "simplex":
        sums = [sum(float(r[i]) for i in range(len(names))) for r in rows]
        if all(abs(s - 1) <= 0.02 for s in sums):
            return {"composition": {"type": "composition", "components": names, "total": 1.0}}
    space: dict[str, Any] = {}
    for j, p in enumerate(params):
        if p["type"] == "categorical":
            space[p["name"]] = {"type": "categorical", "choices": list(p["options"])}
        else:
            values = [float(r[j]) for r in rows]
            lo, hi = min(p.get("low", min(values)), min(values)), max(p.get("high", max(values)), max(values))
            space[p["name"]] = {"type": "real", "low": lo, "high": hi}
    return space


def _citation(source: str) -> str:
    original = next((ln.split(":", 1)[1].strip() for ln in source.splitlines() if "Original data" in ln), "")
    if original.lower() in ("", "not stated"):
        original = "Original publication not stated in Olympus."
    return f"{original.rstrip('.')}. Via {OLYMPUS}; see SOURCE.md."


def main(src_dir: Path, names: list[str]) -> None:
    """Import each named dataset."""
    for name in names:
        src = src_dir / f"olympus_{name}"
        cfg = json.loads((src / "config.json").read_text())
        with (src / "data.csv").open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
        inputs = [p["name"] for p in cfg["parameters"]]
        measurements = [m["name"] for m in cfg["measurements"]]
        goal = cfg["default_goal"][0] if isinstance(cfg["default_goal"], list) else cfg["default_goal"]
        out = HERE / name
        out.mkdir(exist_ok=True)
        for f in ("data.csv", "config.json", "SOURCE.md"):
            shutil.copy(src / f, out / f)
        spec = {
            "name": name,
            "csv": "data.csv",
            "columns": inputs + measurements,
            "inputs": inputs,
            "objective": {"column": measurements[0], "direction": goal},
            "space": _space(cfg, rows),
            "ties": "all",
            "held_out": True,
            "citation": _citation((src / "SOURCE.md").read_text()),
        }
        (out / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=110))
        print(f"{name}: {len(rows)} rows -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
