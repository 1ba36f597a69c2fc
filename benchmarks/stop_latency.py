"""How long ``RE.abort()`` takes to return during a simulated anneal, in process and over CurveZMQ.

Each trial makes a sample, carries it into the furnace, starts a long anneal plan on a
RunEngine in its own thread, waits until the furnace heats, calls ``RE.abort()`` and
times how long until the RunEngine's thread has returned; then checks the heater is off.

Run ``python benchmarks/stop_latency.py [--trials N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from labos.core.campaign import SimulationSpec, WorkflowSpec
from labos.devices import build_lab
from labos.devices.keys import generate
from labos.devices.lab import Lab
from labos.devices.server import InstrumentServer, ServerConfig
from labos.plans import experiment_plan
from labos.plans.experiment import PlannedStep

INSTRUMENTS = {
    "doser": {"kind": "synthesizer", "options": {"output": "doser/out"}},
    "robot": {"kind": "robot", "options": {"stations": {"doser": ["out"], "furnace": ["boat1"], "rack": 24}}},
    "furnace": {"kind": "furnace"},
    "beamline": {"kind": "xrd"},
}
STEPS = [{"action": "anneal", "instrument": "furnace"}, {"action": "measure", "instrument": "beamline"}]
SIM = {"landscape": "batio3-solid-state", "acceleration": 2000.0}


def trial(lab: Lab, k: int) -> float:
    """One abort mid-anneal; returns seconds from ``RE.abort()`` to the RunEngine thread's return."""
    sample = f"s{k}"
    lab["doser"].set({"sample_id": sample, "recipe": {"BaCO3": 0.5, "TiO2": 0.5}}).wait(timeout=60)
    lab["robot"].set({"sample_id": sample, "from": "doser/out", "to": "furnace/boat1"}).wait(timeout=60)
    RE = RunEngine({}, context_managers=[])
    step = PlannedStep("anneal", "furnace", {"temperature": 1000.0, "dwell": 240.0, "ramp_rate": 10.0})
    thread = threading.Thread(target=lambda: _quiet(RE, experiment_plan(lab.devices, [step], sample, {})))
    thread.start()
    while lab["furnace"].driver.readback()["heater"] != "on":
        time.sleep(0.01)
    time.sleep(0.3)
    t0 = time.perf_counter()
    RE.abort("benchmark")
    thread.join()
    elapsed = time.perf_counter() - t0
    while lab["furnace"].busy:
        time.sleep(0.01)
    assert lab["furnace"].driver.readback()["heater"] == "off"
    lab["robot"].set({"sample_id": sample, "from": "furnace/boat1", "to": "rack/*"}).wait(timeout=60)
    return elapsed


def _quiet(RE: RunEngine, plan: object) -> None:
    with contextlib.suppress(RunEngineInterrupted):  # what RE(...) raises after the abort
        RE(plan)


def measure(lab: Lab, trials: int) -> dict[str, float]:
    """Median and worst of ``trials`` aborts."""
    times = [trial(lab, k) for k in range(trials)]
    return {"median_s": statistics.median(times), "max_s": max(times), "trials": trials}


def main() -> None:
    """Print the in-process and over-zmq figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    args = ap.parse_args()
    workflow = WorkflowSpec.model_validate({"instruments": INSTRUMENTS, "steps": STEPS})
    result = {}
    with build_lab(workflow, SimulationSpec(**SIM), seed=1) as lab:
        result["in_process"] = measure(lab, args.trials)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        generate(d, "server")
        generate(d / "clients", "lab")
        config = ServerConfig.model_validate(
            {
                "bind": "tcp://127.0.0.1:55731",
                "secret_key": str(d / "server.key_secret"),
                "authorized_keys": str(d / "clients"),
                "instruments": INSTRUMENTS,
                "simulation": SIM,
            }
        )
        server = InstrumentServer(config, d)
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        opts = {
            "endpoint": "tcp://127.0.0.1:55731",
            "server_key": str(d / "server.key"),
            "client_key": str(d / "clients" / "lab.key_secret"),
        }
        remote = {n: {"kind": s["kind"], "driver": "zmq", "options": opts} for n, s in INSTRUMENTS.items()}
        try:
            wf = WorkflowSpec.model_validate({"instruments": remote, "steps": STEPS})
            with build_lab(wf, SimulationSpec(), seed=1) as lab:
                result["over_zmq"] = measure(lab, args.trials)
        finally:
            server.stop()
            serving.join()
            server.close()
    print(json.dumps(result, indent=2))  # after bluesky's own "Aborting: ..." lines


if __name__ == "__main__":
    main()
