"""``labos validate``, ``labos schema``, ``labos planners``: campaign files and what they may name."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

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
    """List the registered planners, or show one planner's options."""
    from labos.planners.registry import available, get_planner_class

    con = _console()
    if args.name:
        return _planner_options(get_planner_class(args.name), con)
    for name in available():
        cls = get_planner_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        con.print(f"{name:10s} {doc[0] if doc else ''}")
    return EXIT_OK


def _planner_options(cls: Any, con: Any) -> int:
    """A planner's options: name, type, default, description."""
    from rich.table import Table

    doc = (cls.__doc__ or "").strip().splitlines()
    con.print(f"[bold]{cls.name}[/] - {doc[0] if doc else ''}")
    table = Table("option", "type", "default", "description")
    for name, field in cls.Options.model_fields.items():
        kind = _type_name(field.annotation)
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        table.add_row(name, kind, default, field.description or "")
    con.print(table)
    con.print(f"set them in a campaign under planner.options (planner: {{name: {cls.name}, options: {{...}}}})")
    return EXIT_OK


def _type_name(annotation: Any) -> str:
    """``float``, ``int | None``, ``one of 'GP', 'RF'``: an option's type as a person reads it."""
    from typing import Literal, get_args, get_origin

    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    name = getattr(annotation, "__name__", None)
    return name if name and not get_args(annotation) else str(annotation).replace("typing.", "")
