"""``labos validate``, ``labos schema``, ``labos planners``: campaign files and what they may name."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from labos.cli.common import EXIT_OK, _console


# ------------------------------------------------------------------ commands
def cmd_validate(args: argparse.Namespace) -> int:
    """Check a campaign file; print every problem with its line."""
    from labos.validate import load_campaign

    campaign = load_campaign(args.file)
    _console().print(
        f"{args.file}: ok - campaign {campaign.name!r}, {len(campaign.space.names)} parameters, "
        f"{len(campaign.objectives)} objective(s), planner {campaign.planner.name!r}, "
        f"budget {campaign.budget.max_experiments} experiments"
    )
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON schema of campaign files."""
    from labos.core.campaign import Campaign

    print(json.dumps(Campaign.model_json_schema(), indent=2))
    return EXIT_OK


def cmd_planners(args: argparse.Namespace) -> int:
    """List the registered planners."""
    from labos.planners.registry import available, get_planner_class

    con = _console()
    for name in available():
        cls = get_planner_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        con.print(f"{name:10s} {doc[0] if doc else ''}")
    return EXIT_OK
