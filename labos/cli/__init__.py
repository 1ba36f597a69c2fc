"""The ``labos`` command line (one module per command group; the parser and ``main`` here).

Exit codes: 0 success; 1 the campaign stopped or failed (its record is kept);
2 a user mistake (bad file, unknown campaign, bad option); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from labos.cli.bench import cmd_bench
from labos.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, _console
from labos.cli.data import cmd_data_serve, cmd_export, cmd_show
from labos.cli.lab import cmd_instruments, cmd_ioc, cmd_keys, cmd_serve
from labos.cli.run import cmd_demo, cmd_resume, cmd_run, cmd_stop
from labos.cli.spec import cmd_planners, cmd_schema, cmd_validate
from labos.core.errors import LabosError, SpecError
from labos.core.settings import Settings, apply_thread_limits

__all__ = ["build_parser", "main"]


# ---------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    from labos import __version__

    parser = argparse.ArgumentParser(prog="labos", description="Run closed-loop campaigns on (simulated) labs.")
    parser.add_argument("--version", action="version", version=f"labos {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # --data-dir is accepted after an action too (labos instruments add x.yaml --data-dir D)
    data_dir_after = argparse.ArgumentParser(add_help=False)
    data_dir_after.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", help="where the store and plots go (overrides the campaign's data_dir)")
        p.add_argument("--max-experiments", type=int, help="override the budget")
        p.add_argument("--seed", type=int, help="override the seed")
        p.add_argument("--planner", help="override the planner (with default options)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.add_argument("-v", "--verbose", action="store_true", help="print every experiment")

    p = sub.add_parser("run", help="run a campaign file")
    p.add_argument("file")
    run_options(p)
    p.add_argument(
        "--resume", action="store_true", help="continue the latest unfinished campaign of this file, if there is one"
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="continue a campaign whose process died or was stopped")
    p.add_argument("campaign", help="campaign id or name (latest of that name)")
    p.add_argument("--data-dir", help="the data directory holding labos.sqlite (default: labos-data)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="print every experiment")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("demo", help="run the example campaign shipped in examples/demo.yaml")
    run_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("validate", help="check a campaign file and report every problem")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the JSON schema of campaign files")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("show", help="list campaigns, or show one campaign's experiments")
    p.add_argument("campaign", nargs="?", help="campaign id or name (latest of that name)")
    p.add_argument("--data-dir", help="the data directory holding labos.sqlite (default: labos-data)")
    p.add_argument(
        "--agent-log",
        action="store_true",
        help="per experiment: the agent's hypothesis, proposal and its source, result and verdict",
    )
    p.add_argument(
        "--json", action="store_true", help="with --agent-log: every model exchange in full, one JSON object per line"
    )
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("stop", help="ask a running campaign to stop after its current experiment (from any process)")
    p.add_argument("campaign", help="campaign id or name (latest of that name)")
    p.add_argument("--reason", default="stopped by an operator (labos stop)", help="recorded with the stop")
    p.add_argument("--data-dir", help="the data directory holding labos.sqlite (default: labos-data)")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("export", help="export a campaign: flat tables (csv, parquet) or an RO-Crate with provenance")
    p.add_argument("campaign", help="campaign id or name (latest of that name)")
    p.add_argument("--format", choices=["csv", "parquet", "rocrate"], default="rocrate")
    p.add_argument("--out", required=True, help="directory to write into")
    p.add_argument("--data-dir", help="the data directory holding labos.sqlite (default: labos-data)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("data", help="a campaign's raw data (its Bluesky runs, in tiled)")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    q = dsub.add_parser("serve", help="serve a campaign's Bluesky runs over HTTP with tiled")
    q.add_argument("campaign", help="campaign id or name (latest of that name)")
    q.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    q.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    q.add_argument("--api-key", help="the key clients must send (default: LABOS_TILED_API_KEY, else a random one)")
    q.add_argument("--data-dir", help="the data directory holding labos.sqlite (default: labos-data)")
    q.set_defaults(func=cmd_data_serve)

    p = sub.add_parser("bench", help="benchmark planners on datasets (pool-based, Liang et al. 2021)")
    p.add_argument("datasets", nargs="+", help="dataset YAML files (see benchmarks/datasets/)")
    p.add_argument(
        "--planners",
        default="botorch random",
        help="space-separated planners, each NAME or NAME:key=value,... (default: 'botorch random')",
    )
    p.add_argument("--runs", type=int, default=50, help="seeded runs per planner and dataset (default 50)")
    p.add_argument("--seed", type=int, default=0, help="base seed; same seed, same numbers")
    p.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    p.add_argument("--out", default="bench-out", help="output directory")
    p.add_argument(
        "--max-cycles",
        type=int,
        default=None,
        help="stop each run after this many experiments (slow planners, large pools): levels not reached are '-'",
    )
    p.add_argument(
        "--order",
        choices=("shuffled", "pool"),
        default="shuffled",
        help="how each run lists the candidates to the planner: a per-run permutation, the same for every "
        "planner (default), or the file's order (the only one before this option)",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="also compare the planners: AF 0.8 (or Top%% at the cap) with 90%% bootstrap intervals, "
        "differences within noise, and a rank table across datasets (compare.md)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("instruments", help="the facility's instrument registry")
    p.add_argument("--data-dir", help="the data directory holding labos.sqlite (default: labos-data)")
    rsub = p.add_subparsers(dest="instruments_command", required=True, metavar="ACTION")
    after = [data_dir_after]
    q = rsub.add_parser("add", help="register instruments from YAML files", parents=after)
    q.add_argument("files", nargs="+")
    q = rsub.add_parser(
        "update", help="replace registered instruments' entries from YAML files (logged)", parents=after
    )
    q.add_argument("files", nargs="+")
    rsub.add_parser("list", help="every registered instrument", parents=after)
    q = rsub.add_parser("show", help="one instrument, with its maintenance log", parents=after)
    q.add_argument("name")
    q.add_argument("--json", action="store_true", help="the entry as JSON")
    q = rsub.add_parser(
        "inputs", help="an instrument's inputs and limits (the registry's limits applied)", parents=after
    )
    q.add_argument("name")
    rsub.add_parser("status", help="live health check of every enabled instrument (exit 1 if any fails)", parents=after)
    q = rsub.add_parser("disable", help="take an instrument offline (campaigns will not use it)", parents=after)
    q.add_argument("name")
    q.add_argument("--reason", required=True, help="why, e.g. 'lamp replacement until Friday'")
    q.add_argument(
        "--abort",
        action="store_true",
        help="stop the work running on it now (its experiment fails, saying why, and is retried elsewhere); "
        "default: running work finishes",
    )
    q = rsub.add_parser("enable", help="put an instrument back in service", parents=after)
    q.add_argument("name")
    q = rsub.add_parser("remove", help="delete an instrument from the registry", parents=after)
    q.add_argument("name")
    p.set_defaults(func=cmd_instruments)

    p = sub.add_parser("keys", help="create a CurveZMQ key pair for an instrument server or client")
    p.add_argument("directory", help="where to write NAME.key and NAME.key_secret (keep out of the repo)")
    p.add_argument("name", help="key name, e.g. server or the client's host name")
    p.add_argument(
        "--authorize",
        metavar="DIR",
        help="also copy the public key into this server's authorized_keys directory (a client's key)",
    )
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("instrument", help="instrument servers")
    isub = p.add_subparsers(dest="instrument_command", required=True, metavar="ACTION")
    q = isub.add_parser("serve", help="serve the instruments of a server config over CurveZMQ")
    q.add_argument("config", help="server YAML (bind, secret_key, authorized_keys, instruments)")
    q.set_defaults(func=cmd_serve)

    p = sub.add_parser("ioc", help="EPICS Channel Access IOCs")
    isub = p.add_subparsers(dest="ioc_command", required=True, metavar="IOC")
    q = isub.add_parser("beamline", help="serve a beamline driver's PVs over Channel Access (caproto)")
    q.add_argument("config", help="IOC YAML (prefix, instrument, simulation)")
    q.add_argument("--interface", action="append", help="address to serve on (default 127.0.0.1; repeatable)")
    q.set_defaults(func=cmd_ioc)

    p = sub.add_parser("planners", help="list the registered planners, or one planner's options")
    p.add_argument("name", nargs="?", help="a planner: show its options with types, defaults and descriptions")
    p.set_defaults(func=cmd_planners)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labos`` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # a LABOS_* variable with a value it cannot take: the user's to fix
        err = _console(stderr=True)
        for e in exc.errors():
            name = "LABOS_" + str(e["loc"][0]).upper() if e["loc"] else "a LABOS_ variable"
            err.print(f"error: {name}={e.get('input')!r}: {e['msg']}", markup=False)
        return EXIT_USAGE
    try:
        apply_thread_limits(settings.threads)
        code: int = args.func(args)
        return code
    except SpecError as exc:
        err = _console(stderr=True)
        n = len(exc.problems)
        err.print(f"[red]{exc.source or 'campaign'}: {n} problem{'s' if n != 1 else ''}[/]", markup=True)
        for line in str(exc).splitlines():
            err.print(f"  {line}", markup=False)
        return EXIT_USAGE
    except LabosError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted; everything recorded so far is in the store", markup=False)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
