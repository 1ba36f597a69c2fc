"""``labos show``, ``labos export``, ``labos data serve``: what campaigns recorded."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labos.core.errors import LabosError
from labos.core.settings import Settings

if TYPE_CHECKING:
    pass

from labos.cli.common import EXIT_OK, _console, _fmt, _fmt_params, _status, _stored_data_dir


def cmd_show(args: argparse.Namespace) -> int:
    """List campaigns, or one campaign's experiments and best result."""
    from rich.table import Table

    from labos.core.campaign import Campaign
    from labos.data.report import best_record, best_so_far
    from labos.data.reservations import reservations
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
        events = store.events(rec.id) if getattr(args, "agent_log", False) else []
        ran_on: dict[str, list[str]] = {}
        for a in store.attempts(rec.id):  # the latest attempt's instruments, where recorded
            if a.instruments:
                ran_on[a.experiment_id] = a.instruments
        held = [r for r in reservations(store) if r.campaign_id == rec.id]
    if getattr(args, "agent_log", False):
        return _agent_log(campaign, rec.id, exps, events, getattr(args, "json", False))
    obj = campaign.primary
    status = _status(rec, data_dir)
    if status == "interrupted":
        status += (
            f" (process {rec.provenance.get('pid')} ended without finishing the campaign; "
            f"continue it with: labos resume {rec.id})"
        )
    con.print(f"[bold]{rec.name}[/] ({rec.id}) - {status}" + (f": {rec.message}" if rec.message else ""))
    by_exp: dict[str, list[str]] = {}
    for r in held:  # the lanes now: which experiment holds which instrument
        by_exp.setdefault(r.experiment_id, []).append(r.resource.removeprefix(f"{rec.id}/"))
    if by_exp:
        seqs = {e.id: e.seq for e in exps}
        lanes = Table("running", "holds", title=f"{len(by_exp)} in flight, {campaign.workflow.n_lanes} lanes")
        for eid, names in sorted(by_exp.items(), key=lambda kv: seqs.get(kv[0], 0)):
            lanes.add_row(f"#{seqs.get(eid, '?')}", ", ".join(sorted(names)))
        con.print(lanes)
    pooled = any(len(s.instruments) > 1 for s in campaign.workflow.steps)
    table = Table("#", "status", "parameters", obj.name, "best so far", "note", *(["instruments"] if pooled else []))
    for e, b in zip(exps, best_so_far(exps, obj), strict=True):
        value = _fmt(e.objectives[obj.name]) if e.objectives else ""
        note = (
            (f"{e.cause}: " if e.cause else "") + (e.error or "")
            if e.status in ("failed", "cancelled", "interrupted")
            else (f"{e.attempts} attempts" if e.attempts > 1 else "")
        )
        extra = [", ".join(_pooled(campaign, ran_on.get(e.id, [])))] if pooled else []
        table.add_row(
            str(e.seq), e.status, _fmt_params(e.params), value, _fmt(b) if b is not None else "-", note, *extra
        )
    con.print(table)
    best = best_record(exps, obj)
    if best is not None and best.objectives is not None:
        con.print(f"best: #{best.seq} {obj.name} = {best.objectives[obj.name]:.5g} with {_fmt_params(best.params)}")
    else:
        con.print("best: none yet (no successful experiment)")
    return EXIT_OK


def _pooled(campaign: Any, names: list[str]) -> list[str]:
    """Of the instruments an experiment ran on, those it got from a pool of several (the lane's own)."""
    pools = {n for s in campaign.workflow.steps if len(s.instruments) > 1 for n in s.instruments}
    return [n for n in names if n in pools]


def _agent_log(campaign: Any, campaign_id: str, exps: list[Any], events: list[dict[str, Any]], as_json: bool) -> int:
    """``labos show CAMPAIGN --agent-log``: hypothesis -> proposal -> result -> verdict per experiment."""
    import json

    mine = [e for e in events if e["kind"].startswith("planner.")]
    if as_json:
        for e in mine:
            print(json.dumps({"campaign": campaign_id, **e}, default=str))
        return EXIT_OK
    con = _console()
    con.print(f"[bold]{campaign.name}[/] ({campaign_id}) - planner {campaign.planner.name}")
    if not mine:
        con.print("no agent log: the planner of this campaign records no hypotheses or model exchanges")
        return EXIT_OK
    calls: dict[str, list[dict[str, Any]]] = {}
    for e in mine:
        if e["kind"] == "planner.call":
            for eid in e["payload"].get("experiments", []):
                calls.setdefault(eid, []).append(e["payload"])
    by_exp: dict[str, dict[str, Any]] = {}
    for e in mine:
        if e["experiment_id"] and e["kind"] in ("planner.proposal", "planner.verdict"):
            by_exp.setdefault(e["experiment_id"], {})[e["kind"].removeprefix("planner.")] = e["payload"]
    obj = campaign.primary
    for x in exps:
        info = by_exp.get(x.id, {})
        prop = info.get("proposal", {})
        exchanged = [c for c in calls.get(x.id, []) if c.get("purpose") in ("propose", "hypothesis")]
        bad = sum(c.get("outcome") != "valid" for c in exchanged)
        model = next((c.get("model", {}).get("model") for c in exchanged if c.get("model")), None)
        via = f"; {len(exchanged)} model call(s), {bad} rejected" if exchanged else ""
        con.print(f"[bold]#{x.seq}[/] source: {prop.get('source', '-')}" + (f" ({model}{via})" if model else via))
        if prop.get("hypothesis"):
            con.print(f"  hypothesis: {prop['hypothesis']}", markup=False)
        elif prop.get("untested_hypothesis"):
            con.print(
                f"  hypothesis: - (the model's, about points not chosen: {prop['untested_hypothesis']})", markup=False
            )
        else:
            con.print("  hypothesis: -", markup=False)
        con.print(f"  proposal:   {_fmt_params(x.params)}", markup=False)
        for c in exchanged:
            if c.get("outcome") != "valid":
                why = "; ".join(c.get("errors", [])) or c.get("outcome")
                con.print(f"    rejected reply (attempt {c.get('attempt', 0) + 1}): {why}", markup=False)
            if c.get("instruction_like_data"):
                con.print(
                    f"    instruction-like recorded text quoted as data: {c['instruction_like_data']}", markup=False
                )
        if x.objectives:
            result = f"{x.status}, {obj.name} = {_fmt(x.objectives.get(obj.name))}"
        else:
            result = x.status + (f" ({x.error})" if x.error else "")
        con.print(f"  result:     {result}", markup=False)
        v = info.get("verdict")
        verdict = f"{v['verdict']} - {v['reason']}" if v else ("not judged yet" if prop.get("hypothesis") else "-")
        con.print(f"  verdict:    {verdict}", markup=False)
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
    from labos.data.runs import catalog_dir
    from labos.data.serve import serve
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
