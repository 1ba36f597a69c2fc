"""The ``labos`` command line: run, demo, validate, schema, show, planners.

Exit codes: 0 success; 1 the campaign stopped or failed (its record is kept);
2 a user mistake (bad file, unknown campaign, bad option); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labos.core.errors import LabosError, SpecError
from labos.core.settings import Settings, apply_thread_limits

if TYPE_CHECKING:
    from rich.console import Console

    from flows.campaign import CampaignSummary

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # not a terminal (a pipe, a log file): wide enough that tables keep one row per line
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def examples_dir() -> Path:
    """The example campaigns shipped with labos."""
    return Path(__file__).resolve().parent.parent / "examples"


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


def _campaign_from_file(path: Path, args: argparse.Namespace, settings: Settings) -> Any:
    """The campaign of ``path`` with the command line's overrides applied (checked again)."""
    from labos.validate import load_campaign

    campaign = load_campaign(path, args.data_dir or settings.data_dir)
    updates: dict[str, Any] = {}
    if args.seed is not None:
        updates["seed"] = args.seed
    spec = campaign.as_json() | updates
    if args.max_experiments is not None:
        spec["budget"]["max_experiments"] = args.max_experiments
        spec["budget"]["batch_size"] = max(1, min(spec["budget"]["batch_size"], args.max_experiments))
    if args.planner is not None:
        spec["planner"] = {"name": args.planner, "options": {}}
    if updates or args.max_experiments is not None or args.planner is not None:
        from pydantic import ValidationError

        from labos.checks import check_campaign
        from labos.core.campaign import Campaign
        from labos.core.loader import problems_from_validation

        try:
            campaign = Campaign.model_validate(spec)
        except ValidationError as exc:
            raise SpecError(problems_from_validation(exc, spec, {}), "command line") from None
        problems = check_campaign(campaign, args.data_dir or settings.data_dir)
        if problems:
            raise SpecError(problems, "command line")
    return campaign


def _data_dir(path: str | Path) -> Path:
    data_dir = Path(path)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabosError(f"cannot create the data directory {data_dir}: {exc.strerror}") from None
    return data_dir


def _stored_data_dir(args: argparse.Namespace) -> Path:
    """The data directory a command on stored campaigns reads: ``--data-dir``, ``LABOS_DATA_DIR``, or labos-data."""
    return Path(args.data_dir or Settings().data_dir or "labos-data")


def _resumable(data_dir: Path, campaign: Any) -> str | None:
    """The latest unfinished campaign of ``campaign``'s name in ``data_dir``, if its spec is the same."""
    from labos.core.errors import StoreError
    from labos.data.store import open_store

    try:
        store = open_store(data_dir, must_exist=True)
    except StoreError:
        return None
    with store:
        rec = store.find_campaign(campaign.name)
    if rec is None or rec.status == "completed":
        return None
    stored = {k: v for k, v in rec.spec.items() if k != "data_dir"}
    given = {k: v for k, v in campaign.as_json().items() if k != "data_dir"}
    if stored != given:
        changed = sorted(k for k in stored.keys() | given.keys() if stored.get(k) != given.get(k))
        raise LabosError(
            f"the campaign file differs from campaign {rec.id} as it was started (changed: {', '.join(changed)}); "
            f"'labos resume {rec.id}' continues it as stored, or run without --resume to start a new campaign"
        )
    return rec.id


def _run(path: Path | None, args: argparse.Namespace, resume_key: str | None = None) -> int:
    """Start (or, with ``resume_key`` or ``--resume``, continue) a campaign and follow it to the end."""
    from labos import control

    control.clear()
    settings = Settings()
    if path is not None:
        campaign = _campaign_from_file(path, args, settings)
        data_dir = _data_dir(args.data_dir or settings.data_dir or campaign.data_dir)
        if getattr(args, "resume", False):
            resume_key = _resumable(data_dir, campaign)
            if resume_key is None:
                _console(stderr=True).print(f"no unfinished campaign {campaign.name!r} to resume: starting a new one")
    else:
        data_dir = _stored_data_dir(args)
        from labos.data.store import open_store

        open_store(data_dir, must_exist=True).close()  # a clear error if there is none
    from flows.settings import configure_prefect

    configure_prefect(settings.prefect_home or data_dir / "prefect")
    from flows.campaign import attach, campaign_flow
    from labos.session import CampaignSession

    if not args.verbose:  # a failed experiment is recorded and summarised; its traceback is noise here
        import logging

        logging.getLogger("bluesky").setLevel(logging.CRITICAL)
    err = _console(stderr=True)
    if resume_key is not None:
        session = CampaignSession.resume(data_dir, resume_key)
        err.print(f"resuming campaign [bold]{session.id}[/] - data in {data_dir}")
    else:
        session = CampaignSession.create(campaign, data_dir, str(path))
    c = session.campaign
    err.print(
        f"campaign [bold]{c.name}[/] - planner {c.planner.name}, {c.budget.max_experiments} experiments, "
        f"data in {data_dir}"
    )

    def on_signal(signum: int, frame: Any) -> None:
        from labos import control

        if not control.request_stop(f"interrupted by the user ({signal.Signals(signum).name})"):
            raise KeyboardInterrupt  # a second signal: abort the running experiment too
        err.print(
            "stopping after the current experiment (it will be recorded); press Ctrl-C again to abort it",
            markup=False,
        )

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = _with_progress(lambda: campaign_flow(attach(session), str(data_dir)), session, args)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    _print_summary(summary)
    if control.stop_reason(summary.campaign_id) is not None:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.status == "completed" else EXIT_FAILED


def _with_progress(run: Any, session: Any, args: Any) -> CampaignSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from labos.progress import StoreWatcher

    campaign = session.campaign
    obj = campaign.primary
    done = [r for r in session.records() if r.status in ("completed", "failed")]
    with Progress(
        TextColumn("experiment"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("best {task.fields[best]}"),
        TextColumn("failed {task.fields[failed]}"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        disable=args.quiet,
    ) as bar:
        failed = sum(r.status == "failed" for r in done)
        best = [r.objectives[obj.name] for r in done if r.objectives]
        task = bar.add_task(
            "campaign", total=campaign.budget.max_experiments, completed=len(done), failed=failed, best="-"
        )
        first: float | None = None
        for v in best:
            first = v if first is None or obj.better(v, first) else first
        state: dict[str, Any] = {"done": len(done), "failed": failed, "best": first}

        def on_finished(r: Any) -> None:
            state["done"] += 1
            if r.status == "failed":
                state["failed"] += 1
            elif r.objectives and (state["best"] is None or obj.better(r.objectives[obj.name], state["best"])):
                state["best"] = r.objectives[obj.name]
            shown = f"{obj.name}={state['best']:.4g}" if state["best"] is not None else "-"
            bar.update(task, completed=state["done"], best=shown, failed=state["failed"])
            if args.verbose:
                outcome = _fmt_params(r.objectives) if r.status == "completed" else f"[red]failed[/]: {r.error}"
                bar.console.print(f"  #{r.seq:3d} {_fmt_params(r.params)} -> {outcome}")

        watcher = StoreWatcher(session.store.location, session.id, on_finished, seen={r.id for r in done})
        watcher.start()
        try:
            summary: CampaignSummary = run()
        finally:
            watcher.close()
    return summary


def _print_summary(s: CampaignSummary) -> None:
    con = _console()
    style = "green" if s.status == "completed" else "yellow"
    con.print(f"\n[bold]{s.name}[/]: [{style}]{s.status}[/] - {s.n_ok} ok, {s.n_failed} failed, {s.elapsed_s:.1f} s")
    if s.message:
        con.print(f"  {s.message}")
    if s.best_value is None:
        con.print("  no successful experiment, so no best result")
    else:
        con.print(f"  best {s.objective} ({s.direction}): [bold]{s.best_value:.5g}[/]")
        con.print(f"  parameters: {_fmt_params(s.best_params or {})}")
        con.print(f"  metrics:    {_fmt_params(s.best_metrics or {})}")
    if s.pareto:
        from rich.table import Table

        names = list(s.pareto[0].objectives)
        table = Table(*names, "parameters", title=f"Pareto front ({len(s.pareto)} non-dominated experiments)")
        for obs in s.pareto:
            table.add_row(*(f"{obs.objectives[n]:.5g}" for n in names), _fmt_params(obs.params))
        con.print(table)
    con.print(f"  campaign id: {s.campaign_id}")
    con.print(f"  store:       {s.store}")
    if s.plot:
        con.print(f"  plot:        {s.plot}")
    where = f" --data-dir {s.store.parent}" if isinstance(s.store, Path) else ""
    con.print(f"  details:     labos show {s.campaign_id}{where}")


def cmd_run(args: argparse.Namespace) -> int:
    """Run a campaign file."""
    return _run(Path(args.file), args)


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue a campaign whose process died or was stopped."""
    return _run(None, args, resume_key=args.campaign)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the shipped demo campaign."""
    path = examples_dir() / "demo.yaml"
    if not path.exists():
        raise LabosError(f"the demo campaign is missing: {path}")
    return _run(path, args)


def cmd_show(args: argparse.Namespace) -> int:
    """List campaigns, or one campaign's experiments and best result."""
    from rich.table import Table

    from labos.core.campaign import Campaign
    from labos.data.report import best_record, best_so_far
    from labos.data.store import open_store

    data_dir = _stored_data_dir(args)
    con = _console()
    with open_store(data_dir, must_exist=True) as store:
        if args.campaign is None:
            table = Table("campaign id", "name", "status", "started", "experiments")
            for c in store.campaigns():
                n = len(store.experiments(c.id))
                started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.created))
                table.add_row(c.id, c.name, _status(c, data_dir), started, str(n))
            con.print(table)
            return EXIT_OK
        rec = store.find_campaign(args.campaign)
        if rec is None:
            names = sorted({c.name for c in store.campaigns()})
            known = ", ".join(names) or "none"
            raise LabosError(f"no campaign {args.campaign!r} in {store.db.where}; campaigns: {known}")
        campaign = Campaign.model_validate(rec.spec)
        exps = store.experiments(rec.id)
    obj = campaign.primary
    status = _status(rec, data_dir)
    if status == "interrupted":
        status += (
            f" (process {rec.provenance.get('pid')} ended without finishing the campaign; "
            f"continue it with: labos resume {rec.id})"
        )
    con.print(f"[bold]{rec.name}[/] ({rec.id}) - {status}" + (f": {rec.message}" if rec.message else ""))
    table = Table("#", "status", "parameters", obj.name, "best so far", "note")
    for e, b in zip(exps, best_so_far(exps, obj), strict=True):
        value = _fmt(e.objectives[obj.name]) if e.objectives else ""
        note = (
            (f"{e.cause}: " if e.cause else "") + (e.error or "")
            if e.status in ("failed", "cancelled", "interrupted")
            else (f"{e.attempts} attempts" if e.attempts > 1 else "")
        )
        table.add_row(str(e.seq), e.status, _fmt_params(e.params), value, _fmt(b) if b is not None else "-", note)
    con.print(table)
    best = best_record(exps, obj)
    if best is not None and best.objectives is not None:
        con.print(f"best: #{best.seq} {obj.name} = {best.objectives[obj.name]:.5g} with {_fmt_params(best.params)}")
    else:
        con.print("best: none yet (no successful experiment)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export a campaign's record as CSV, Parquet or an RO-Crate."""
    from labos.data.export import export_campaign
    from labos.data.store import open_store

    data_dir = _stored_data_dir(args)
    with open_store(data_dir, must_exist=True) as store:
        files = export_campaign(store, args.campaign, args.format, Path(args.out), data_dir)
    con = _console()
    for f in files:
        con.print(f"wrote {f}", markup=False)
    return EXIT_OK


def cmd_data_serve(args: argparse.Namespace) -> int:
    """Serve a campaign's Bluesky runs with tiled, for tiled's own client (``tiled.client.from_uri``)."""
    import secrets

    from labos.core.errors import LabosError
    from labos.data.lock import CampaignLock
    from labos.data.runs import catalog_dir, serve
    from labos.data.store import open_store

    data_dir = _stored_data_dir(args)
    with open_store(data_dir, must_exist=True) as store:
        rec = store.find_campaign(args.campaign)
        if rec is None:
            raise LabosError(f"no campaign {args.campaign!r} in {store.db.where}")
    directory = catalog_dir(data_dir, rec.id)
    if not (directory / "catalog.db").exists():
        raise LabosError(f"campaign {rec.id} has no Bluesky runs yet (no catalog in {directory})")
    api_key = args.api_key or Settings().tiled_api_key or secrets.token_hex(16)
    if not api_key.isalnum():  # tiled's rule: letters and digits only
        raise LabosError("the API key must be letters and digits only (make one with: openssl rand -hex 32)")
    lock = CampaignLock(data_dir, rec.id)
    lock.acquire()  # the catalog's table file has one writer: a running campaign, or this server
    con = _console()

    def ready(url: str) -> None:
        con.print(f"serving the Bluesky runs of {rec.id} at {url}", markup=False)
        con.print(f"  from tiled.client import from_uri; runs = from_uri({url!r}, api_key={api_key!r})", markup=False)
        con.print("  Ctrl-C stops the server", markup=False)

    try:
        serve(directory, args.host, args.port, api_key, ready)
    finally:
        lock.release()
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    """Ask a running campaign, from any process, to stop after its current experiment."""
    from labos.data.store import open_store

    data_dir = _stored_data_dir(args)
    with open_store(data_dir, must_exist=True) as store:
        rec = store.find_campaign(args.campaign)
        if rec is None:
            raise LabosError(f"no campaign {args.campaign!r} in {store.db.where}")
        if _status(rec, data_dir) != "running":
            raise LabosError(f"campaign {rec.id} is not running (it is {_status(rec, data_dir)})")
        store.request_stop(rec.id, args.reason)
    _console().print(f"asked campaign {rec.id} to stop after its current experiment: {args.reason}", markup=False)
    return EXIT_OK


def _status(rec: Any, data_dir: Path) -> str:
    """A campaign's status; ``running`` only while a process holds its lock (else ``interrupted``)."""
    from labos.data.lock import CampaignLock

    if rec.status != "running":
        return str(rec.status)
    lock = CampaignLock(data_dir, rec.id)
    if lock.path.exists():  # written by this labos: the kernel's lock says whether its process lives
        return "running" if lock.held_elsewhere() else "interrupted"
    return str(rec.effective_status)  # an older store: fall back to the recorded pid


def cmd_bench(args: argparse.Namespace) -> int:
    """Pool-based benchmark (Liang et al. 2021 protocol) of planners on datasets."""
    from labos.bench.runner import default_jobs, parse_planner, planner_available, run_benchmark

    err = _console(stderr=True)
    entries = []
    for text in args.planners.split():
        name = text.partition(":")[0]
        if name == "physbo" and not planner_available(name):
            err.print(
                "physbo skipped: install the optional nimo extra (pip install 'labos[nimo]') to compare with it",
                markup=False,
            )
            continue
        entries.append(parse_planner(text))
    if not entries:
        raise LabosError("no planner to benchmark")
    jobs = args.jobs or default_jobs()
    out = Path(args.out)
    err.print(
        f"benchmark: {len(args.datasets)} dataset(s) x {len(entries)} planner(s) x {args.runs} runs, "
        f"seed {args.seed}, {jobs} process(es) -> {out}"
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(), console=err, disable=args.quiet) as bar:
        task = bar.add_task("runs", total=len(args.datasets) * len(entries) * args.runs)
        summary = run_benchmark(
            args.datasets,
            entries,
            runs=args.runs,
            seed=args.seed,
            jobs=jobs,
            out=out,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    _console().print((out / "results.md").read_text(), markup=False)
    _console().print(f"summary: {out / 'summary.json'}; curves: {out}/*_top.png", markup=False)
    return EXIT_OK if summary["datasets"] else EXIT_FAILED


def cmd_keys(args: argparse.Namespace) -> int:
    """Create a CurveZMQ key pair."""
    from labos.devices.keys import generate

    public, secret = generate(args.directory, args.name)
    con = _console()
    con.print(f"public key (give to the other side): {public}", markup=False)
    con.print(f"secret key (keep private, never commit): {secret}", markup=False)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve instruments over CurveZMQ until interrupted."""
    import logging

    from labos.core.loader import read_model
    from labos.devices.server import InstrumentServer, ServerConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    path = Path(args.config)
    config, _ = read_model(ServerConfig, path)
    server = InstrumentServer(config, base=path.parent)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
    return EXIT_OK


def _registry(args: argparse.Namespace) -> tuple[Any, Any]:
    from labos.data.registry import Registry
    from labos.data.store import open_store

    data_dir = _stored_data_dir(args)
    store = open_store(data_dir)
    return store, Registry(store)


def cmd_instruments(args: argparse.Namespace) -> int:
    """Register and maintain instruments (the facility's registry)."""
    from rich.table import Table

    con = _console()
    store, reg = _registry(args)
    with store:
        action = args.instruments_command
        if action == "add":
            from labos.data.registry import load_entry

            for path in args.files:
                entry = load_entry(path)
                reg.add(entry)
                con.print(f"registered {entry.name} ({entry.kind}, driver {entry.driver})", markup=False)
        elif action == "list":
            table = Table("name", "kind", "driver", "state", "capabilities", "owner")
            for r in reg.all():
                state = "enabled" if r.enabled else f"disabled: {r.reason}"
                table.add_row(
                    r.entry.name, r.entry.kind, r.entry.driver, state, ", ".join(r.entry.capabilities), r.entry.owner
                )
            con.print(table)
        elif action == "show":
            r = reg.require(args.name)
            con.print(f"[bold]{r.entry.name}[/] - {'enabled' if r.enabled else 'disabled: ' + str(r.reason)}")
            con.print(json.dumps(r.entry.model_dump(mode="json"), indent=2), markup=False)
            for h in reg.history(args.name):
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["time"]))
                who = f" by {h['who']}" if h["who"] else ""
                con.print(f"  {when} {h['action']}{who}" + (f": {h['detail']}" if h["detail"] else ""), markup=False)
        elif action == "status":
            return _instrument_status(reg, _stored_data_dir(args), con)
        elif action == "disable":
            reg.set_enabled(args.name, False, args.reason)
            con.print(f"{args.name} disabled: {args.reason}", markup=False)
        elif action == "enable":
            reg.set_enabled(args.name, True)
            con.print(f"{args.name} enabled", markup=False)
        elif action == "remove":
            reg.remove(args.name)
            con.print(f"{args.name} removed", markup=False)
    return EXIT_OK


def _instrument_status(reg: Any, data_dir: Path, con: Console) -> int:
    """Live health check: build each enabled instrument's driver and ask it for its inputs."""
    from rich.table import Table

    from labos.devices.drivers import DriverContext
    from labos.devices.lab import build_driver

    table = Table("name", "kind", "state", "health", "latency", "detail")
    unhealthy = 0
    for r in reg.all():
        if not r.enabled:
            table.add_row(r.entry.name, r.entry.kind, "disabled", "-", "-", str(r.reason))
            continue
        t0 = time.perf_counter()
        try:
            ctx = DriverContext(seed=0, simulation={}, data_dir=data_dir)
            driver = build_driver(r.entry.name, r.entry.instrument_spec(), ctx)
            try:
                n = len(driver.inputs())
            finally:
                driver.close()
                ctx.close()
            table.add_row(
                r.entry.name,
                r.entry.kind,
                "enabled",
                "[green]ok[/]",
                f"{(time.perf_counter() - t0) * 1e3:.0f} ms",
                f"{n} inputs",
            )
        except LabosError as exc:
            unhealthy += 1
            table.add_row(r.entry.name, r.entry.kind, "enabled", "[red]FAILED[/]", "-", str(exc))
    con.print(table)
    return EXIT_FAILED if unhealthy else EXIT_OK


def cmd_ioc(args: argparse.Namespace) -> int:
    """Serve a beamline over EPICS until interrupted."""
    import logging

    from labos.core.loader import read_model
    from labos.devices.ioc import IOCConfig, serve_beamline

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # caproto's server loop shuts down cleanly on it

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    path = Path(args.config)
    config, _ = read_model(IOCConfig, path)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        serve_beamline(config, args.interface, base=path.resolve().parent)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


# ---------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    parser = argparse.ArgumentParser(prog="labos", description="Run closed-loop campaigns on (simulated) labs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("instruments", help="the facility's instrument registry")
    p.add_argument("--data-dir", help="the data directory holding labos.sqlite (default: labos-data)")
    rsub = p.add_subparsers(dest="instruments_command", required=True, metavar="ACTION")
    q = rsub.add_parser("add", help="register instruments from YAML files")
    q.add_argument("files", nargs="+")
    rsub.add_parser("list", help="every registered instrument")
    q = rsub.add_parser("show", help="one instrument, with its maintenance log")
    q.add_argument("name")
    rsub.add_parser("status", help="live health check of every enabled instrument (exit 1 if any fails)")
    q = rsub.add_parser("disable", help="take an instrument offline (campaigns will not use it)")
    q.add_argument("name")
    q.add_argument("--reason", required=True, help="why, e.g. 'lamp replacement until Friday'")
    q = rsub.add_parser("enable", help="put an instrument back in service")
    q.add_argument("name")
    q = rsub.add_parser("remove", help="delete an instrument from the registry")
    q.add_argument("name")
    p.set_defaults(func=cmd_instruments)

    p = sub.add_parser("keys", help="create a CurveZMQ key pair for an instrument server or client")
    p.add_argument("directory", help="where to write NAME.key and NAME.key_secret (keep out of the repo)")
    p.add_argument("name", help="key name, e.g. server or the client's host name")
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

    p = sub.add_parser("planners", help="list the registered planners")
    p.set_defaults(func=cmd_planners)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labos`` command."""
    args = build_parser().parse_args(argv)
    try:
        apply_thread_limits(Settings().threads)
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
