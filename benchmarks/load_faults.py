"""Load and faults: several campaigns of several users on one served facility, with things going wrong.

Usage: ``.venv/bin/python benchmarks/load_faults.py OUT [--campaigns 8] [--budget 4] [--lease-s 6]``

The facility: four furnaces, a doser, a robot arm, a diffraction beamline and a UV-vis
spectrometer, all simulated in one shared world and served over CurveZMQ by three
instrument servers on 127.0.0.1 (furnaces 1-2; furnaces 3-4; the rest), registered in
one store. ``--campaigns`` campaigns of three users (``alice`` priority 0, ``bob`` 5,
``carol`` 10), each with four lanes and planner ``random``, run at once as separate
``labos run`` processes against one Prefect server. Faults are injected by the
simulators at about 10 % per experiment (thermocouple drift in the furnaces, a needle
jam at the doser, beam dumps at the beamline). Mid-way:

- the server of furnaces 3-4 is killed (SIGKILL) and restarted: a campaign with an
  anneal in progress there cannot know its furnace's state and halts (by design); it is
  resumed, as an operator would once the furnace is checked;
- one campaign process is killed with SIGKILL; the time until its reservations lapse is
  measured, and it is resumed.

A campaign that ends ``failed`` or ``stopped`` is resumed at once, as an operator would
once its instrument is checked (up to three times), until every one has spent its budget.
``OUT/report.json`` holds what happened, read from the instruments' own action logs (the
world file) and the store: each instrument's utilisation (busy time over the time while
work remained), each campaign's and user's share of the furnaces against its priority,
the lease lapse, the resumes, and each experiment's attempts. ``tests/test_load.py`` runs
it and checks the report against the logs. Prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
LABOS = [sys.executable, "-m", "labos.cli"]
USERS = (("alice", 0), ("bob", 5), ("carol", 10))
FURNACES = [f"furnace_{i}" for i in range(1, 5)]
ACCELERATION = 5000.0
"""An anneal of 3-10 simulated hours takes 2-7 s: the campaigns overlap for a while."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def servers(out: Path, world: Path) -> dict[str, dict[str, Any]]:
    """The three instrument servers' configurations, by server name."""
    robot_stations: dict[str, Any] = {"doser": ["out"], **{f: ["boat1"] for f in FURNACES}}
    robot_stations |= {"beamline": ["stage"], "uvvis": ["holder"], "rack": 96}
    sim = {"landscape": "batio3-solid-state", "world": str(world), "acceleration": ACCELERATION}

    def furnace(i: int) -> dict[str, Any]:
        options = {"station": f"furnace_{i}", "faults": {"drift": 0.04}}
        return {"kind": "furnace", "driver": "sim", "options": options}

    instruments = {
        "furnaces-a": {f"furnace-{i}": furnace(i) for i in (1, 2)},
        "furnaces-b": {f"furnace-{i}": furnace(i) for i in (3, 4)},
        "shared": {
            "doser-1": {
                "kind": "synthesizer",
                "driver": "sim",
                "options": {"output": "doser/out", "faults": {"needle": 0.03}},
            },
            "robot-1": {"kind": "robot", "driver": "sim", "options": {"stations": robot_stations}},
            "beamline-1": {
                "kind": "xrd",
                "driver": "sim",
                "options": {"station": "beamline", "faults": {"beam_dump": 0.03}},
            },
            "uvvis-1": {
                "kind": "uvvis",
                "driver": "sim",
                "options": {"station": "uvvis", "wavelength_nm": [230, 800, 1]},
            },
        },
    }
    return {
        name: {
            "bind": f"tcp://127.0.0.1:{free_port()}",
            "secret_key": str(out / "keys" / "server.key_secret"),
            "authorized_keys": str(out / "keys" / "clients"),
            "instruments": insts,
            "simulation": sim,
        }
        for name, insts in instruments.items()
    }


class Facility:
    """The instrument servers of the facility, each a ``labos instrument serve`` process."""

    def __init__(self, out: Path, configs: dict[str, dict[str, Any]]) -> None:
        self.out = out
        self.configs = configs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        """Start (or restart) server ``name``."""
        path = self.out / f"server-{name}.yaml"
        path.write_text(yaml.safe_dump(self.configs[name]))
        log = (self.out / f"server-{name}.log").open("ab")
        self.procs[name] = subprocess.Popen([*LABOS, "instrument", "serve", str(path)], stdout=log, stderr=log)

    def kill(self, name: str) -> None:
        """SIGKILL server ``name`` (nothing it ran ends cleanly)."""
        self.procs[name].kill()
        self.procs[name].wait()

    def close(self) -> None:
        """Stop every server."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def register(out: Path, data: Path, configs: dict[str, dict[str, Any]]) -> None:
    """Register every served instrument in the store of ``data`` (driver ``zmq``)."""
    for cfg in configs.values():
        for name, inst in cfg["instruments"].items():
            entry = {
                "name": name,
                "kind": inst["kind"],
                "driver": "zmq",
                "owner": "Facility <facility@example.org>",
                "options": {
                    "endpoint": cfg["bind"],
                    "instrument": name,
                    "server_key": str(out / "keys" / "server.key"),
                    "client_key": str(out / "keys" / "lab" / "lab.key_secret"),
                    "timeout_s": 5,
                },
            }
            path = out / f"{name}.yaml"
            path.write_text(yaml.safe_dump(entry))
            run_cli(["instruments", "add", str(path), "--data-dir", str(data)])


def run_cli(args: list[str]) -> str:
    """Run a ``labos`` command to the end; its output (raises if it fails)."""
    done = subprocess.run([*LABOS, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"labos {' '.join(args)} exited {done.returncode}: {done.stdout}{done.stderr}")
    return done.stdout


def wait_until_served(data: Path, timeout: float = 60.0) -> None:
    """Until every registered instrument answers (``labos instruments status``)."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            [*LABOS, "instruments", "status", "--data-dir", str(data)], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the instrument servers did not answer: {done.stdout}{done.stderr}")
        time.sleep(0.5)


def campaign_spec(name: str, priority: int, seed: int, budget: int, data: Path, world: Path) -> dict[str, Any]:
    """A four-lane BaTiO3 campaign on the registered facility."""
    spec = yaml.safe_load((ROOT / "examples" / "lanes.yaml").read_text())
    spec["name"], spec["seed"], spec["priority"] = name, seed, priority
    spec["data_dir"] = str(data)
    spec["planner"] = {"name": "random", "options": {}}
    spec["budget"] = {"max_experiments": budget, "max_consecutive_failures": budget + 1}
    spec["simulation"] = {"landscape": "batio3-solid-state", "acceleration": ACCELERATION, "world": str(world)}
    registered = {"doser": "doser-1", "robot": "robot-1", "beamline": "beamline-1", "uvvis": "uvvis-1"}
    registered |= {f"furnace_{i}": f"furnace-{i}" for i in range(1, 5)}
    kinds = {name: inst["kind"] for name, inst in spec["workflow"]["instruments"].items()}
    spec["workflow"]["instruments"] = {
        local: {"kind": kinds[local], "driver": "registry", "options": {"name": reg}}
        for local, reg in registered.items()
    }
    return dict(spec)


def reservations_of(data: Path, campaign_id: str) -> int:
    """How many instrument reservations campaign ``campaign_id`` holds now."""
    from labos.data.store import Store

    with Store(data) as store:
        return int(store.query("SELECT COUNT(*) FROM reservations WHERE campaign_id = ?", (campaign_id,))[0][0])


def campaign_ids(data: Path) -> dict[str, str]:
    """Campaign name -> id."""
    from labos.data.store import Store

    with Store(data) as store:
        return {c.name: c.id for c in store.campaigns()}


def anneals_begun(world: Path, instruments: set[str]) -> int:
    """Anneals the instruments named have begun, by their own log."""
    from simulators.world import SampleBook

    book = SampleBook(world)
    try:
        return sum(1 for a in book.actions() if a.instrument in instruments and a.action == "anneal")
    finally:
        book.close()


def completed_of(data: Path, campaign_id: str) -> int:
    """Experiments of ``campaign_id`` completed so far."""
    from labos.data.store import Store

    with Store(data) as store:
        return sum(e.status == "completed" for e in store.experiments(campaign_id))


def scenario(out: Path, n_campaigns: int, budget: int, lease_s: float) -> dict[str, Any]:
    """Run the whole scenario in ``out``; the report."""
    from labos.devices.keys import generate

    out.mkdir(parents=True, exist_ok=True)
    data, world = out / "data", out / "world.sqlite"
    generate(out / "keys", "server")
    generate(out / "keys" / "lab", "lab", authorize=out / "keys" / "clients")
    configs = servers(out, world)
    facility = Facility(out, configs)
    env = {**os.environ, "LABOS_LEASE_S": str(lease_s)}
    names = []
    for i in range(n_campaigns):
        user, priority = USERS[i % len(USERS)]
        names.append((f"{user}-{i // len(USERS) + 1}", user, priority))
    procs: dict[str, subprocess.Popen[str]] = {}
    logs: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    t0 = time.time()

    def launch(name: str, args: list[str]) -> None:
        logs.setdefault(name, (out / f"{name}.log").open("a"))
        procs[name] = subprocess.Popen([*LABOS, *args], env=env, stdout=logs[name], stderr=subprocess.STDOUT, text=True)

    try:
        for name in configs:
            facility.start(name)
        data.mkdir(parents=True, exist_ok=True)
        register(out, data, configs)
        wait_until_served(data)
        for seed, (name, _, priority) in enumerate(names):
            path = out / f"{name}.yaml"
            path.write_text(yaml.safe_dump(campaign_spec(name, priority, seed, budget, data, world)))
            launch(name, ["run", str(path), "-q"])

        # the server of furnaces 3-4 dies once one has begun an anneal, and comes back 1 s later
        deadline = time.monotonic() + 300
        while anneals_begun(world, {"furnace-3", "furnace-4"}) < 1:
            if time.monotonic() > deadline or all(p.poll() is not None for p in procs.values()):
                raise RuntimeError("furnaces 3-4 never began an anneal")
            time.sleep(0.05)
        facility.kill("furnaces-b")
        events.append({"what": "instrument server killed", "server": "furnaces-b", "at": time.time() - t0})
        time.sleep(1.0)
        facility.start("furnaces-b")
        events.append({"what": "instrument server restarted", "server": "furnaces-b", "at": time.time() - t0})

        # one campaign process dies (SIGKILL) once it has completed an experiment and holds instruments
        deadline = time.monotonic() + 300
        victim = None
        while victim is None:
            ids = campaign_ids(data)
            for name, _, _ in names:
                alive = procs[name].poll() is None
                mid_way = alive and name in ids and 1 <= completed_of(data, ids[name]) < budget - 1
                if mid_way and reservations_of(data, ids[name]) > 0:
                    victim = name
                    break
            if victim is None and (time.monotonic() > deadline or all(p.poll() is not None for p in procs.values())):
                raise RuntimeError("no campaign could be killed mid-way")
            time.sleep(0.02)
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        killed_at = time.time()
        while reservations_of(data, ids[victim]) > 0:  # nobody renews them: they lapse
            if time.time() - killed_at > 10 * lease_s + 30:
                raise RuntimeError(f"the reservations of the killed campaign {victim} never lapsed")
            time.sleep(0.05)
        lapse = time.time() - killed_at
        events.append({"what": "campaign process killed", "campaign": victim, "at": killed_at - t0, "lapse_s": lapse})
        launch(victim, ["resume", ids[victim], "--data-dir", str(data), "-q"])

        resumes: dict[str, int] = defaultdict(int)
        while True:  # an operator resumes a campaign that halted or stopped (its instrument checked) at once
            ended = [n for n, _, _ in names if procs[n].poll() is not None]
            statuses = campaign_statuses(data) if ended else {}
            halted = [n for n in ended if statuses.get(n) != "completed"]
            if len(ended) == len(names) and not halted:
                break
            for name in halted:
                if resumes[name] >= 3:
                    raise RuntimeError(f"campaign {name} did not complete after 3 resumes: see {out / name}.log")
                resumes[name] += 1
                events.append({"what": "resumed", "campaign": name, "status": statuses.get(name)})
                launch(name, ["resume", campaign_ids(data)[name], "--data-dir", str(data), "-q"])
            time.sleep(0.2)
        wall = time.time() - t0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        facility.close()
        for fh in logs.values():
            fh.close()
    report = measure(data, world, names, lease_s)
    report |= {"wall_s": wall, "events": events, "resumes": dict(resumes), "lease_s": lease_s}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def campaign_statuses(data: Path) -> dict[str, str]:
    """Campaign name -> stored status."""
    from labos.data.store import Store

    with Store(data) as store:
        return {c.name: c.status for c in store.campaigns()}


def measure(data: Path, world: Path, names: list[tuple[str, str, int]], lease_s: float) -> dict[str, Any]:
    """What happened, from the instruments' own logs and the store."""
    from labos.data.store import Store
    from simulators.world import SampleBook

    book = SampleBook(world)
    try:
        acts = book.actions()
    finally:
        book.close()
    by_inst: dict[str, list[Any]] = defaultdict(list)
    for a in acts:
        by_inst[a.instrument].append(a)
    start = min(a.wall_start for a in acts)
    end = max(a.wall_end for a in acts)
    utilisation = {
        name: sum(a.wall_end - a.wall_start for a in rows) / (end - start) for name, rows in sorted(by_inst.items())
    }
    campaigns: dict[str, Any] = {}
    with Store(data) as store:
        by_name = {c.name: c for c in store.campaigns()}
        for name, user, priority in names:
            rec = by_name[name]
            exps = store.experiments(rec.id)
            attempts = store.attempts(rec.id)
            furnace_s = sum(
                a.wall_end - a.wall_start
                for a in acts
                if a.instrument.startswith("furnace") and a.holder and a.holder.startswith(rec.id + "-")
            )
            campaigns[name] = {
                "id": rec.id,
                "user": user,
                "priority": priority,
                "status": rec.status,
                "experiments": [{"id": e.id, "status": e.status, "cause": e.cause, "error": e.error} for e in exps],
                "attempts": [
                    {
                        "experiment_id": a.experiment_id,
                        "n": a.n,
                        "status": a.status,
                        "cause": a.cause,
                        "error": a.error,
                        "started": a.started,
                        "finished": a.finished,
                        "instruments": a.instruments,
                    }
                    for a in attempts
                ],
                "furnace_s": furnace_s,
            }
        leftover = int(store.query("SELECT COUNT(*) FROM reservations")[0][0])
    total = sum(c["furnace_s"] for c in campaigns.values()) or 1.0
    for c in campaigns.values():
        c["furnace_share"] = c["furnace_s"] / total
    users: dict[str, float] = defaultdict(float)
    for c in campaigns.values():
        users[c["user"]] += c["furnace_share"]
    return {
        "utilisation": utilisation,
        "work_span_s": end - start,
        "campaigns": campaigns,
        "user_furnace_share": dict(users),
        "reservations_left": leftover,
    }


def main() -> None:
    """Run the scenario and print its summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--campaigns", type=int, default=8)
    ap.add_argument("--budget", type=int, default=4)
    ap.add_argument("--lease-s", type=float, default=6.0)
    args = ap.parse_args()
    report = scenario(args.out, args.campaigns, args.budget, args.lease_s)
    print(f"## Load and faults: {args.campaigns} campaigns x {args.budget} experiments, {report['wall_s']:.0f} s")
    for e in report["events"]:
        print(f"- {e}")
    print("\n| instrument | utilisation |\n|---|---|")
    for name, u in report["utilisation"].items():
        print(f"| {name} | {u:.0%} |")
    print(
        "\n| campaign | user | priority | status | furnace share | failed | attempts |\n|---|---|---|---|---|---|---|"
    )
    for name, c in report["campaigns"].items():
        failed = sum(e["status"] == "failed" for e in c["experiments"])
        print(
            f"| {name} | {c['user']} | {c['priority']} | {c['status']} | {c['furnace_share']:.0%} | {failed} | "
            f"{len(c['attempts'])} |"
        )
    print(f"\nby user: {', '.join(f'{u} {s:.0%}' for u, s in report['user_furnace_share'].items())}")


if __name__ == "__main__":
    main()
