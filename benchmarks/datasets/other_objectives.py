"""Declare the other objectives of the multi-objective categorical Olympus sets as datasets of their own.

Usage: ``python benchmarks/datasets/other_objectives.py``

Each imported Olympus set benches its first measurement. The sets with categorical
variables and several measurements (dye_lasers, lnp3, redoxmers, Suzuki ii–iv) offer the
others as new single-objective targets on the same pools: ``<set>_<measurement>/dataset.yaml``
reads the parent's ``data.csv`` (its ``SOURCE.md`` and citation apply), with the
measurement's goal from the parent's ``config.json``. Suzuki i is left out: its space
was used to choose the default's settings. These form the third held-out group, written
on 2026-12-06 before any planner ran on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PARENTS = ("dye_lasers", "lnp3", "redoxmers", "suzuki_ii", "suzuki_iii", "suzuki_iv")


def main() -> None:
    """Write each ``dataset.yaml`` and a ``SOURCE.md`` naming its parent."""
    for parent in PARENTS:
        spec = yaml.safe_load((HERE / parent / "dataset.yaml").read_text())
        cfg = json.loads((HERE / parent / "config.json").read_text())
        goals = cfg["default_goal"]
        for i, m in enumerate(cfg["measurements"][1:], start=1):
            name = f"{parent}_{m['name']}"
            out = HERE / name
            out.mkdir(exist_ok=True)
            derived = {
                **spec,
                "name": name,
                "csv": f"../{parent}/data.csv",
                "objective": {"column": m["name"], "direction": goals[i]},
                "held_out": True,
                "citation": spec["citation"].replace("see SOURCE.md", f"see ../{parent}/SOURCE.md"),
            }
            (out / "dataset.yaml").write_text(yaml.safe_dump(derived, sort_keys=False, allow_unicode=True, width=110))
            (out / "SOURCE.md").write_text(
                f"# Source\n\nThe {parent} pool (`../{parent}/data.csv`; origin, licence and citation in "
                f"`../{parent}/SOURCE.md`) with `{m['name']}` ({goals[i]}) as the objective instead of "
                f"`{cfg['measurements'][0]['name']}`. Written by `../other_objectives.py`: third held-out group.\n"
            )
            print(f"{name}: {m['name']} ({goals[i]})")


if __name__ == "__main__":
    main()
