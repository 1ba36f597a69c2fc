"""The registered solid-state lab: a furnace served over zmq and a beamline over EPICS, in other processes.

Channel Access is set up for 127.0.0.1 on free ports before any EPICS client exists in
this process, the way ``examples/solid-state-lab/run.sh`` does it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flows.settings import stop_process
from labos.cli import main
from labos.core.errors import DeviceFault
from labos.data.runs import RunCatalog
from labos.data.store import Store
from labos.devices.epics import EpicsBeamline, loopback_environment
from labos.devices.keys import generate
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.e2e
LAB = EXAMPLES / "solid-state-lab"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CA_PORT, REPEATER_PORT = free_port(), free_port(socket.SOCK_DGRAM)
os.environ.update(loopback_environment(CA_PORT, REPEATER_PORT))


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "labos.cli", *args], stdout=out, stderr=subprocess.STDOUT, env=os.environ
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[dict[str, object]]:
    """The example lab's server and IOC configs, rewritten for free ports and a temporary data dir."""
    tmp = tmp_path_factory.mktemp("lab")
    data = tmp / "data"
    keys = data / "keys"
    generate(keys / "server", "server")
    generate(keys / "lab", "lab", authorize=keys / "authorized")
    world = data / "world.sqlite"
    zmq_port = free_port()
    server = yaml.safe_load((LAB / "furnace-server.yaml").read_text())
    server.update(
        bind=f"tcp://127.0.0.1:{zmq_port}",
        secret_key=str(keys / "server" / "server.key_secret"),
        authorized_keys=str(keys / "authorized"),
    )
    server["simulation"]["world"] = str(world)
    ioc = yaml.safe_load((LAB / "beamline-ioc.yaml").read_text())
    ioc["simulation"]["world"] = str(world)
    ioc["prefix"] = "TEST:XRD:"
    (tmp / "server.yaml").write_text(yaml.safe_dump(server))
    (tmp / "ioc.yaml").write_text(yaml.safe_dump(ioc))
    entries = []
    for path in sorted((LAB / "instruments").glob("*.yaml")):
        entry = yaml.safe_load(path.read_text())
        if entry["driver"] == "zmq":
            entry["options"].update(
                endpoint=f"tcp://127.0.0.1:{zmq_port}",
                server_key=str(keys / "server" / "server.key"),
                client_key=str(keys / "lab" / "lab.key_secret"),
            )
        if entry["driver"] == "epics":
            entry["options"]["prefix"] = "TEST:XRD:"
        out = tmp / path.name
        out.write_text(yaml.safe_dump(entry))
        entries.append(out)
    procs = [
        start(["instrument", "serve", str(tmp / "server.yaml")], tmp / "server.log"),
        start(["ioc", "beamline", str(tmp / "ioc.yaml")], tmp / "ioc.log"),
    ]
    yield {"tmp": tmp, "data": data, "world": world, "entries": entries, "procs": procs}
    for p in procs:
        stop_process(p)


def wait_healthy(data: Path, capsys: pytest.CaptureFixture[str], seconds: float = 30.0) -> str:
    deadline = time.monotonic() + seconds
    while True:
        code = main(["instruments", "--data-dir", str(data), "status"])
        out = capsys.readouterr().out
        if code == 0 or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


def test_operator_registers_five_instruments_all_healthy_and_the_campaign_runs_through_them(lab, capsys):
    data = lab["data"]
    assert main(["instruments", "--data-dir", str(data), "add", *map(str, lab["entries"])]) == 0
    out = wait_healthy(data, capsys)
    assert out.count(" ok ") == 5, out
    for name in ("beamline-1", "doser-1", "furnace-1", "robot-1", "uvvis-2"):
        assert name in out

    spec = yaml.safe_load((LAB / "campaign.yaml").read_text())
    spec["simulation"]["world"] = str(lab["world"])
    spec["simulation"]["acceleration"] = 1e7
    spec["budget"]["max_experiments"] = 6
    path = lab["tmp"] / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["run", str(path), "--data-dir", str(data)]) == 0
    with Store(data) as store:
        (campaign,) = store.query("SELECT id FROM campaigns")
        rows = store.query("SELECT status FROM experiments WHERE campaign_id=?", (campaign["id"],))
        assert len(rows) == 6
        with RunCatalog.open(data, campaign["id"]) as catalog:
            streams = {stream for _, md in catalog.runs() for stream in catalog.node[md["start"]["uid"]]}
        assert {"doser", "robot", "furnace", "beamline", "uvvis"} <= streams  # every instrument took part
        ok = [r for r in rows if r["status"] == "completed"]
        assert ok, "no experiment succeeded"


def test_a_dead_ioc_is_a_transient_fault_within_the_timeout(lab, capsys):
    drv = EpicsBeamline("bl", {"prefix": "NOBODY:HOME:", "timeout_s": 0.5})
    t0 = time.monotonic()
    with pytest.raises(DeviceFault) as info:
        drv.inputs()
    assert info.value.transient and "did not connect within 0.5 s" in str(info.value)
    assert time.monotonic() - t0 < 5
    drv.close()


def test_ioc_reports_driver_faults_and_enforces_its_limits(lab):
    drv = EpicsBeamline("bl", {"prefix": "TEST:XRD:", "timeout_s": 5})
    try:
        energy = next(i for i in drv.inputs() if i.name == "energy")
        assert (energy.low, energy.high) == (5.0, 30.0)  # control limits carried by the PV
        with pytest.raises(DeviceFault, match="sample 'ghost' does not exist"):
            drv.mount("ghost")
        drv.shutter(False)
        with pytest.raises(DeviceFault, match=r"no sample mounted|shutter is closed"):
            drv.acquire(1.0)
    finally:
        drv.close()
