"""``labos run``, ``labos resume``, ``labos demo``, ``labos stop``: running campaigns."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labos.core.errors import LabosError, SpecError
from labos.core.settings import Settings

if TYPE_CHECKING:
    from flows.campaign import CampaignSummary

from labos.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    _console,
    _data_dir,
    _fmt_params,
    _status,
    _stored_data_dir,
    examples_dir,
)


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
    from flows.settings import configure_prefect, route_logs, wait_for_api

    configure_prefect(settings.prefect_home or data_dir / "prefect", keep_alive=settings.prefect_keep_alive)
    from flows.campaign import attach, campaign_flow
    from labos.session import CampaignSession

    route_logs(data_dir / "labos.log")  # a recorded fault's library traceback goes there, not to the terminal
    err = _console(stderr=True)
    if resume_key is not None:
        session = CampaignSession.resume(data_dir, resume_key)
        err.print(f"resuming campaign [bold]{session.id}[/] - data in {data_dir}")
    else:
        session = CampaignSession.create(campaign, data_dir, str(path))
    c = session.campaign
    if not args.quiet:
        err.print(
            f"campaign [bold]{c.name}[/] - planner {c.planner.name}, {c.budget.max_experiments} experiments, "
            f"data in {data_dir}"
        )

    def on_signal(signum: int, frame: Any) -> None:
        from labos import control

        if not control.on_signal(signum):
            return  # a second signal: the running experiment is aborted
        err.print(
            "stopping after the current experiment (it will be recorded); press Ctrl-C again to abort it",
            markup=False,
        )

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        session.open_catalog()  # tiled takes seconds: opened in the background while Prefect's server starts
        wait_for_api()
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
    lanes = campaign.workflow.n_lanes
    with Progress(
        TextColumn("experiment"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("best {task.fields[best]}"),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("wall"),
        TimeElapsedColumn(),
        *([TextColumn("{task.fields[lanes]}")] if lanes > 1 else []),
        console=_console(stderr=True),
        disable=args.quiet,
    ) as bar:
        failed = sum(r.status == "failed" for r in done)
        best = [r.objectives[obj.name] for r in done if r.objectives]
        task = bar.add_task(
            "campaign", total=campaign.budget.max_experiments, completed=len(done), failed=failed, best="-", lanes=""
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

        pools = {n for s in campaign.workflow.steps if len(s.instruments) > 1 for n in s.instruments}
        seqs = {r.id: r.seq for r in session.records()}

        def on_lanes(held: dict[str, list[str]]) -> None:  # the lanes: each experiment in flight and its instrument
            if lanes > 1:
                for eid in held:
                    if eid not in seqs:
                        seqs[eid] = int(eid.rsplit("-", 1)[-1])
                shown = [
                    f"#{seqs[eid]} " + (",".join(sorted(n for n in names if n in pools)) or ",".join(sorted(names)))
                    for eid, names in sorted(held.items(), key=lambda kv: seqs[kv[0]])
                ]
                bar.update(task, lanes=f"{len(held)}/{lanes} lanes: " + "  ".join(shown) if held else "")

        watcher = StoreWatcher(
            session.store.location, session.id, on_finished, seen={r.id for r in done}, on_lanes=on_lanes
        )
        watcher.start()
        try:
            summary: CampaignSummary = run()
        finally:
            watcher.close()
    return summary


def _print_summary(s: CampaignSummary) -> None:
    con = _console()
    style = "green" if s.status == "completed" else "yellow"
    con.print(
        f"\n[bold]{s.name}[/]: [{style}]{s.status}[/] - {s.n_ok} ok, {s.n_failed} failed; "
        f"wall time {_duration(s.elapsed_s)}, instrument time {_duration(s.instrument_time_s)}"
    )
    if s.message:
        con.print(f"  {'error: ' if s.status == 'failed' else ''}{s.message}", markup=False)
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
    if isinstance(s.store, Path):
        con.print(f"  log:         {s.store.parent / 'labos.log'}")
    con.print(f"  details:     labos show {s.campaign_id}{where}")


def _duration(seconds: float) -> str:
    """``42.1 s``, ``12 min``, ``3.5 h`` or ``2.1 d``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


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
