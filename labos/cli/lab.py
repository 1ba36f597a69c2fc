"""``labos instruments``, ``labos instrument serve``, ``labos ioc``, ``labos keys``: the facility's instruments."""

from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labos.core.errors import LabosError

if TYPE_CHECKING:
    from rich.console import Console


from labos.cli.common import EXIT_FAILED, EXIT_OK, _console, _stored_data_dir


def cmd_keys(args: argparse.Namespace) -> int:
    """Create a CurveZMQ key pair."""
    from labos.devices.keys import generate

    public, secret = generate(args.directory, args.name, args.authorize)
    con = _console()
    con.print(f"public key (give to the other side): {public}", markup=False)
    con.print(f"secret key (mode 0600; keep private, never commit): {secret}", markup=False)
    if args.authorize:
        con.print(f"authorized: {Path(args.authorize) / public.name}", markup=False)
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
    """The store and its registry; only ``add`` and ``update`` create a store where there is none.

    One rule for every command that reads what is stored (``show``, ``export``, ``instruments
    list``, ...): a data directory without a store is an error naming it, never a new
    empty store.
    """
    from labos.data.registry import Registry
    from labos.data.store import open_store

    data_dir = _stored_data_dir(args)
    store = open_store(data_dir, must_exist=args.instruments_command not in ("add", "update"))
    return store, Registry(store)


def cmd_instruments(args: argparse.Namespace) -> int:
    """Register and maintain instruments (the facility's registry)."""
    from rich.table import Table

    con = _console()
    store, reg = _registry(args)
    with store:
        action = args.instruments_command
        if action in ("add", "update"):
            from labos.data.registry import check_entry, load_entry

            for path in args.files:
                entry = load_entry(path)
                try:
                    unchecked = check_entry(entry, _stored_data_dir(args))
                except LabosError as exc:
                    raise LabosError(f"{path}: {exc}") from None
                if action == "add":
                    reg.add(entry)
                    con.print(f"registered {entry.name} ({entry.kind}, driver {entry.driver})", markup=False)
                else:
                    changed = reg.update(entry)
                    con.print(f"{entry.name}: " + (f"updated {', '.join(changed)}" if changed else "unchanged"))
                if unchecked:
                    _console(stderr=True).print(
                        f"warning: {entry.name}: limits not checked against the instrument now ({unchecked}); "
                        "they are checked whenever a campaign uses it",
                        markup=False,
                    )
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
            if args.json:
                con.print(json.dumps(r.entry.model_dump(mode="json"), indent=2), markup=False)
                return EXIT_OK
            con.print(f"[bold]{r.entry.name}[/] - {'enabled' if r.enabled else 'disabled: ' + str(r.reason)}")
            _show_entry(r.entry, con)
            con.print("maintenance log:")
            for h in reg.history(args.name):
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["time"]))
                who = f" by {h['who']}" if h["who"] else ""
                con.print(f"  {when} {h['action']}{who}" + (f": {h['detail']}" if h["detail"] else ""), markup=False)
        elif action == "status":
            return _instrument_status(reg, _stored_data_dir(args), con)
        elif action == "inputs":
            return _instrument_inputs(reg.require(args.name), _stored_data_dir(args), con)
        elif action == "disable":
            aborted = reg.set_enabled(args.name, False, args.reason, abort=args.abort)
            con.print(f"{args.name} disabled: {args.reason}", markup=False)
            if args.abort:
                con.print(f"running work on it: {aborted} experiment(s) asked to abort", markup=False)
            else:
                con.print("work running on it finishes; nothing new starts on it (--abort stops it now)", markup=False)
        elif action == "enable":
            reg.set_enabled(args.name, True)
            con.print(f"{args.name} enabled", markup=False)
        elif action == "remove":
            reg.remove(args.name)
            con.print(f"{args.name} removed", markup=False)
    return EXIT_OK


def _show_entry(entry: Any, con: Console) -> None:
    """A registry entry as aligned ``field: value`` lines."""
    data = entry.model_dump(mode="json")
    for key in ("kind", "driver", "owner", "location", "capabilities", "options", "limits", "calibration"):
        value = data.get(key)
        if value in (None, [], {}):
            continue
        if isinstance(value, list):
            text = ", ".join(map(str, value))
        elif isinstance(value, dict):
            text = ", ".join(f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in value.items())
        else:
            text = str(value)
        con.print(f"  {key + ':':14s}{text}", markup=False)


def _instrument_inputs(r: Any, data_dir: Path, con: Console) -> int:
    """The inputs and limits a campaign step may set on a registered instrument (registry limits applied)."""
    from rich.table import Table

    from labos.core.campaign import SimulationSpec
    from labos.data.registry import LimitedDriver
    from labos.devices.build import build_driver
    from labos.devices.drivers import DriverContext

    ctx = DriverContext(seed=0, simulation=SimulationSpec().model_dump(), data_dir=data_dir, check_only=True)
    try:
        driver = build_driver(r.entry.name, r.entry.instrument_spec(), ctx)
        try:
            specs = LimitedDriver(driver, r.entry.limits, r.entry.name).inputs() if r.entry.limits else driver.inputs()
        finally:
            driver.close()
    finally:
        ctx.close()
    table = Table(
        "input", "kind", "low", "high", "unit", "choices", "default", title=f"{r.entry.name} ({r.entry.kind})"
    )
    for s in specs:
        table.add_row(
            s.name,
            s.kind,
            "" if s.low is None else f"{s.low:g}",
            "" if s.high is None else f"{s.high:g}",
            s.unit or "",
            ", ".join(map(str, s.choices)),
            "" if s.default is None else str(s.default),
        )
    con.print(table)
    return EXIT_OK


def _instrument_status(reg: Any, data_dir: Path, con: Console) -> int:
    """Live health check: build each enabled instrument's driver and ask it for its inputs."""
    from rich.table import Table

    from labos.core.campaign import SimulationSpec
    from labos.devices.build import build_driver
    from labos.devices.drivers import DriverContext

    table = Table("name", "kind", "state", "health", "latency", "detail")
    unhealthy = 0
    for r in reg.all():
        if not r.enabled:
            table.add_row(r.entry.name, r.entry.kind, "disabled", "-", "-", str(r.reason))
            continue
        t0 = time.perf_counter()
        try:
            ctx = DriverContext(seed=0, simulation=SimulationSpec().model_dump(), data_dir=data_dir)
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
