"""Instruments served from another process over CurveZMQ on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from bluesky import RunEngine

from flows.settings import stop_process
from labos.analysis.registry import analyse
from labos.core.campaign import SimulationSpec, WorkflowSpec
from labos.core.errors import ConfigurationError, DeviceFault, InstrumentStateUnknown, OutOfBoundsError
from labos.data.documents import RunReadings
from labos.devices import build_lab
from labos.devices.drivers import DriverContext
from labos.devices.keys import generate
from labos.devices.remote import create_driver
from labos.plans import experiment_plan, resolve_steps

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def keydir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    generate(d, "server")
    generate(d / "lab", "lab", authorize=d / "clients")
    generate(d, "intruder")
    return d


def start_server(tmp: Path, keydir: Path, acceleration: float, reservoir_ml: float = 250.0, port: int = 0):
    port = port or free_port()
    cfg = {
        "bind": f"tcp://127.0.0.1:{port}",
        "secret_key": str(keydir / "server.key_secret"),
        "authorized_keys": str(keydir / "clients"),
        "instruments": {
            "synth": {"kind": "synthesizer", "driver": "sim", "options": {"reservoir_ml": reservoir_ml}},
            "uvvis": {"kind": "uvvis", "driver": "sim"},
        },
        "simulation": {"acceleration": acceleration},
    }
    path = tmp / f"server-{port}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    log = (tmp / f"server-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "labos.cli", "instrument", "serve", str(path)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"tcp://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # wait until it answers
        drv = create_driver("uvvis", "uvvis", options(endpoint, keydir, timeout_s=0.5), DriverContext(0, {}))
        try:
            drv.inputs()
            break
        except DeviceFault:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / f"server-{port}.log").read_text()) from None
        finally:
            drv.close()
    return proc, endpoint, tmp / f"server-{port}.log", log


def options(endpoint: str, keydir: Path, client: str = "lab/lab", **extra):
    return {
        "endpoint": endpoint,
        "server_key": str(keydir / "server.key"),
        "client_key": str(keydir / f"{client}.key_secret"),
        **extra,
    }


def stop(proc, log) -> None:
    stop_process(proc)
    log.close()


def test_the_same_devices_and_plan_drive_served_instruments(tmp_path, keydir):
    proc, endpoint, _, log = start_server(tmp_path, keydir, acceleration=1e6)
    try:
        workflow = WorkflowSpec.model_validate(
            {
                "instruments": {
                    "synth": {"kind": "synthesizer", "driver": "zmq", "options": options(endpoint, keydir)},
                    "uvvis": {"kind": "uvvis", "driver": "zmq", "options": options(endpoint, keydir)},
                },
                "steps": [
                    {"action": "synthesize", "instrument": "synth"},
                    {"action": "measure", "instrument": "uvvis"},
                ],
            }
        )
        params = {"CsPbBr3": 0.7, "CsPbI3": 0.3, "temperature": 150.0, "reaction_time": 60.0}
        with build_lab(workflow, SimulationSpec(), seed=0) as lab:
            # limits come over the wire and are enforced locally, before anything is sent
            with pytest.raises(OutOfBoundsError, match="temperature = 400 degC is above the limit 220 degC"):
                lab["synth"].set({"sample_id": "x", "recipe": {**params, "temperature": 400.0}})
            RE = RunEngine({}, context_managers=[])
            cap = RunReadings()
            RE.subscribe(cap)
            steps = resolve_steps(workflow.steps, params, {0: {p: p for p in params}})
            RE(experiment_plan(lab.devices, steps, "remote-1", {"experiment_id": "remote-1"}))
        assert cap.stop_doc is not None and cap.stop_doc["exit_status"] == "success"
        metrics = analyse("uvvis", "uvvis", cap.readings["uvvis"])
        assert 1.9 < metrics["band_gap_eV"] < 2.5
    finally:
        stop(proc, log)


def test_unknown_client_is_refused_and_the_refusal_logged(tmp_path, keydir):
    proc, endpoint, logfile, log = start_server(tmp_path, keydir, acceleration=1e6)
    try:
        drv = create_driver(
            "uvvis", "uvvis", options(endpoint, keydir, client="intruder", timeout_s=1.0), DriverContext(0, {})
        )
        with pytest.raises(DeviceFault, match=r"no reply from .* within 1 s .*key not authorized"):
            drv.inputs()
        drv.close()
        time.sleep(0.2)
        assert "refused client with unknown CurveZMQ key" in logfile.read_text()
    finally:
        stop(proc, log)


def test_remote_faults_come_back_and_a_dead_server_is_a_fault_not_a_hang(tmp_path, keydir):
    # ~25 simulated minutes per synthesis at 1000x: about 1.5 s of wall-clock time
    proc, endpoint, _, log = start_server(tmp_path, keydir, acceleration=1000.0, reservoir_ml=1.5)
    try:
        synth = create_driver(
            "synthesizer", "synth", options(endpoint, keydir, action_timeout_s=5, timeout_s=2), DriverContext(0, {})
        )
        recipe = {"CsPbBr3": 1.0, "temperature": 100.0, "reaction_time": 1200.0, "ligand": "oleylamine"}
        with pytest.raises(DeviceFault, match=r"\(remote\) synth: reservoir CsPbBr3 is empty"):
            synth.synthesize("a", recipe)  # 2 mL wanted, 1.5 mL in the reservoir
        recipe["CsPbBr3"] = 0.5  # 1 mL: fits
        import threading

        killer = threading.Timer(0.5, proc.kill)
        killer.start()
        t0 = time.monotonic()
        # the server died mid-action: nobody can say the synthesis ended, so nothing may touch the sample;
        # the client finds out by its checks (every timeout_s, two missed), not after action_timeout_s
        with pytest.raises(InstrumentStateUnknown, match="stopped answering while synthesize ran"):
            synth.synthesize("b", recipe)
        assert time.monotonic() - t0 < 4 * 2 + 1
        synth.close()
    finally:
        stop(proc, log)


def test_a_server_restarted_mid_action_is_found_out_at_the_next_check(tmp_path, keydir):
    """The new server answers, but knows nothing of the anneal the old one ran: the state is unknown."""
    import threading

    proc, endpoint, _, log = start_server(tmp_path, keydir, acceleration=200.0)
    port = int(endpoint.rsplit(":", 1)[1])
    try:
        synth = create_driver(
            "synthesizer", "synth", options(endpoint, keydir, action_timeout_s=120, timeout_s=1), DriverContext(0, {})
        )
        recipe = {"CsPbBr3": 0.5, "temperature": 100.0, "reaction_time": 1200.0, "ligand": "oleylamine"}

        def restart() -> None:
            nonlocal proc, log
            stop(proc, log)
            proc, _, _, log = start_server(tmp_path, keydir, acceleration=200.0, port=port)

        threading.Timer(0.5, restart).start()
        t0 = time.monotonic()
        with pytest.raises(InstrumentStateUnknown, match="no longer knows the synthesize it was running"):
            synth.synthesize("b", recipe)  # about 7 s at 200x: the restart comes first
        assert time.monotonic() - t0 < 30  # not action_timeout_s
        assert synth.inputs()  # the client talks to the new server
        synth.close()
    finally:
        stop(proc, log)


def test_bad_client_configuration():
    with pytest.raises(ConfigurationError, match="driver zmq needs option 'endpoint'"):
        create_driver("uvvis", "uvvis", {}, DriverContext(0, {}))
    with pytest.raises(ConfigurationError, match="key file not found"):
        create_driver(
            "uvvis",
            "uvvis",
            {"endpoint": "tcp://127.0.0.1:1", "server_key": "/nope", "client_key": "/nope"},
            DriverContext(0, {}),
        )
