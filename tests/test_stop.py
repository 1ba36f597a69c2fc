"""Stopping instruments the Bluesky way: RE.abort, RE.pause/resume and status timeouts mid-action.

The RunEngine calls every moved device's ``stop()`` when a plan is aborted or paused;
the devices pass it to their drivers, which end the action at once in their safe
state. Checked in process and with the instruments served over CurveZMQ.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from labos.core.campaign import InstrumentSpec, SimulationSpec, WorkflowSpec
from labos.core.errors import ActionTimeout, InstrumentStateUnknown, InterlockError
from labos.data.documents import RunReadings
from labos.devices import build_lab
from labos.devices.drivers import DriverContext
from labos.devices.furnace import Furnace
from labos.devices.keys import generate
from labos.devices.lab import Lab
from labos.devices.server import InstrumentServer, ServerConfig
from labos.plans import experiment_plan
from labos.plans.experiment import PlannedStep
from tests.test_remote import free_port, options

pytestmark = pytest.mark.e2e

STATIONS = {"doser": ["out"], "furnace": ["boat1"], "rack": 4}
INSTRUMENTS = {
    "doser": {"kind": "synthesizer", "options": {"output": "doser/out"}},
    "robot": {"kind": "robot", "options": {"stations": STATIONS}},
    "furnace": {"kind": "furnace"},
    "beamline": {"kind": "xrd"},
}
LONG = {"temperature": 1000.0, "dwell": 240.0, "ramp_rate": 10.0}  # ~25,000 simulated s
SHORT = {"temperature": 300.0, "dwell": 1.0, "ramp_rate": 20.0}  # ~4,400 simulated s
ACCELERATION = 2000.0  # LONG takes ~12 s of wall-clock time, SHORT ~2 s


def make_sample(lab: Lab, sample: str = "s1") -> None:
    lab["doser"].set({"sample_id": sample, "recipe": {"BaCO3": 0.5, "TiO2": 0.5}}).wait(timeout=30)
    lab["robot"].set({"sample_id": sample, "from": "doser/out", "to": "furnace/boat1"}).wait(timeout=30)


def workflow(instruments: dict) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {
            "instruments": instruments,
            "steps": [{"action": "anneal", "instrument": "furnace"}, {"action": "measure", "instrument": "beamline"}],
        }
    )


@pytest.fixture
def lab() -> Iterator[Lab]:
    sim = SimulationSpec(landscape="batio3-solid-state", acceleration=ACCELERATION)
    with build_lab(workflow(INSTRUMENTS), sim, seed=1) as lab:
        yield lab


@contextlib.contextmanager
def serve(tmp_path: Path, **client_options: float) -> Iterator[Lab]:
    """The same instruments on an instrument server (its own thread), driven over CurveZMQ."""
    generate(tmp_path, "server")
    generate(tmp_path / "lab", "lab", authorize=tmp_path / "clients")
    port = free_port()
    config = ServerConfig.model_validate(
        {
            "bind": f"tcp://127.0.0.1:{port}",
            "secret_key": str(tmp_path / "server.key_secret"),
            "authorized_keys": str(tmp_path / "clients"),
            "instruments": INSTRUMENTS,
            "simulation": {"landscape": "batio3-solid-state", "acceleration": ACCELERATION},
        }
    )
    server = InstrumentServer(config, tmp_path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    remote = {
        name: {
            "kind": spec["kind"],
            "driver": "zmq",
            "options": options(f"tcp://127.0.0.1:{port}", tmp_path, **client_options),
        }
        for name, spec in INSTRUMENTS.items()
    }
    try:
        with build_lab(workflow(remote), SimulationSpec(), seed=1) as lab:
            lab.server = server  # type: ignore[attr-defined]
            yield lab
    finally:
        server.stop()
        thread.join(timeout=10)
        server.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Lab]:
    """The instruments over CurveZMQ, with the default timeouts."""
    with serve(tmp_path) as lab:
        yield lab


class Running:
    """A plan running on a RunEngine in a thread of its own, as a campaign runs it."""

    def __init__(self, lab: Lab, program: dict) -> None:
        self.RE = RunEngine({}, context_managers=[])
        self.docs = RunReadings()
        self.RE.subscribe(self.docs)
        self.error: BaseException | None = None
        plan = experiment_plan(lab.devices, [PlannedStep("anneal", "furnace", program)], "s1", {"experiment_id": "e"})
        self.thread = threading.Thread(target=self._run, args=(plan,), daemon=True)
        self.thread.start()

    def _run(self, plan) -> None:
        try:
            self.RE(plan)
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            self.error = exc

    def wait_busy(self, lab: Lab, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while lab["furnace"].driver.readback()["heater"] != "on":
            assert time.monotonic() < deadline, "the anneal never started"
            time.sleep(0.02)
        time.sleep(0.3)  # well into the ramp


def settle(device, timeout: float = 2.0) -> None:
    """Wait for the stopped action's worker to finish (the RunEngine does not wait for it)."""
    deadline = time.monotonic() + timeout
    while device.busy:
        assert time.monotonic() < deadline, f"{device.name} still busy {timeout} s after stop()"
        time.sleep(0.01)


def abort_mid_anneal(lab: Lab) -> None:
    make_sample(lab)
    running = Running(lab, LONG)
    running.wait_busy(lab)
    t0 = time.monotonic()
    running.RE.abort("operator abort")
    running.thread.join(timeout=5)
    elapsed = time.monotonic() - t0
    assert not running.thread.is_alive()
    assert elapsed < 1.0, f"RE.abort() took {elapsed:.2f} s"
    assert isinstance(running.error, RunEngineInterrupted)
    assert running.docs.stop_doc is not None and running.docs.stop_doc["exit_status"] == "abort"
    settle(lab["furnace"])
    now = lab["furnace"].driver.readback()
    assert now["heater"] == "off" and now["program"] == "stopped"
    assert 25.0 < now["temperature_c"] < 1000.0  # stopped on the way up, cooling
    # the furnace works again afterwards
    lab["furnace"].set({"sample_id": "s1", "program": SHORT}).wait(timeout=30)
    assert lab["furnace"].state.get() == "idle"


def test_abort_during_an_anneal_returns_within_a_second_with_the_heater_off(lab):
    abort_mid_anneal(lab)
    assert lab["furnace"].state.get() == "idle"
    book = lab.context.resources["simulators.world"].book
    assert any("(stopped)" in line for line in book.get("s1").history)


def test_abort_during_an_anneal_over_zmq_returns_within_a_second_with_the_heater_off(served):
    abort_mid_anneal(served)


def test_pause_stops_the_furnace_and_resume_runs_the_step_again(lab):
    make_sample(lab)
    running = Running(lab, SHORT)
    running.wait_busy(lab)
    running.RE.request_pause(defer=False)
    running.thread.join(timeout=5)
    assert isinstance(running.error, RunEngineInterrupted) and running.RE.state == "paused"
    settle(lab["furnace"])
    assert lab["furnace"].driver.readback()["heater"] == "off"  # paused = resting: the heater is off
    assert lab["furnace"].state.get() == "stopped"
    resumed: list[BaseException] = []

    def resume() -> None:
        try:
            running.RE.resume()
        except BaseException as exc:  # noqa: BLE001
            resumed.append(exc)

    t = threading.Thread(target=resume, daemon=True)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive() and not resumed
    assert running.docs.stop_doc is not None and running.docs.stop_doc["exit_status"] == "success"
    [reading] = running.docs.readings["furnace"]
    assert reading["furnace_setpoint"] == 300.0 and reading["furnace_heater"] == "off"
    history = lab.context.resources["simulators.world"].book.get("s1").history
    assert any("(stopped)" in h for h in history) and "annealed by furnace: 300 degC" in history[-1]


def test_abort_during_a_transfer_halts_the_arm_and_it_works_afterwards():
    sim = SimulationSpec(landscape="batio3-solid-state", acceleration=float("inf"))
    with build_lab(workflow(INSTRUMENTS), sim, seed=1) as lab:
        lab["doser"].set({"sample_id": "s1", "recipe": {"BaCO3": 0.5, "TiO2": 0.5}}).wait(timeout=60)
        clock = lab.context.resources["simulators.world"].clock
        clock.acceleration = 5.0  # a transfer takes seconds
        RE = RunEngine({}, context_managers=[])
        step = PlannedStep("transfer", "robot", {"from": "doser/out", "to": "furnace/boat1"})
        errors: list[BaseException] = []

        def run() -> None:
            try:
                RE(experiment_plan(lab.devices, [step], "s1", {}))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        time.sleep(0.5)
        assert lab["robot"].busy
        t0 = time.monotonic()
        RE.abort("operator abort")
        thread.join(timeout=5)
        assert time.monotonic() - t0 < 1.0 and isinstance(errors[0], RunEngineInterrupted)
        settle(lab["robot"])
        assert lab["robot"].state.get() == "stopped"
        occupancy = lab["robot"].driver.occupancy()
        held = lab["robot"].driver.holding()
        assert (occupancy["doser/out"] == "s1") != (held == "s1")  # halted before or after the pick, not lost
        source = "gripper" if held == "s1" else "doser/out"
        clock.acceleration = float("inf")
        lab["robot"].set({"sample_id": "s1", "from": source, "to": "furnace/boat1"}).wait(timeout=10)
        assert lab["robot"].driver.occupancy()["furnace/boat1"] == "s1"


def test_a_timed_out_action_is_stopped_and_its_status_fails_only_once_it_has_ended():
    spec = {**INSTRUMENTS, "furnace": {"kind": "furnace", "timeout_s": 0.4}}
    sim = SimulationSpec(landscape="batio3-solid-state", acceleration=ACCELERATION)
    with build_lab(workflow(spec), sim, seed=1) as lab:
        make_sample(lab)
        furnace = lab["furnace"]
        status = furnace.set({"sample_id": "s1", "program": LONG})
        with pytest.raises(InterlockError, match="furnace: busy with anneal; one action at a time"):
            furnace.set({"sample_id": "s1", "program": SHORT})
        t0 = time.monotonic()
        with pytest.raises(ActionTimeout, match=r"anneal ran past its 0.4 s limit and was stopped \(it then ended: "):
            status.wait(timeout=5)
        assert time.monotonic() - t0 < 1.0
        # the status failed after the action ended: nothing is left running when a plan moves on
        assert not furnace.busy and furnace.state.get() == "stopped"
        assert furnace.driver.readback()["heater"] == "off"
        assert "partly annealed" in str(furnace.driver.world.book.get("s1").history)


class _Stuck:
    """A test double: a driver whose action ignores ``stop`` (a hung controller)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def inputs(self) -> list:
        return []

    def stop(self) -> None:
        pass

    def anneal(self) -> None:
        self.release.wait(10)


def test_an_action_that_does_not_end_when_stopped_leaves_the_device_out_of_service():
    driver = _Stuck()
    device = Furnace(driver=driver, name="furnace", timeout_s=0.2, stop_grace_s=0.3)
    t0 = time.monotonic()
    status = device.run_in_thread("anneal", driver.anneal)
    with pytest.raises(InstrumentStateUnknown, match=r"anneal ran past its 0\.2 s limit and had not ended 0\.3 s"):
        status.wait(timeout=5)
    assert 0.45 < time.monotonic() - t0 < 2.0
    assert device.state.get() == "unknown"
    with pytest.raises(InterlockError, match="busy with anneal, which never ended"):
        device.run_in_thread("anneal", driver.anneal)
    driver.release.set()
    device.destroy()


def test_a_drivers_declared_maximum_bounds_every_step():
    ctx = DriverContext(0, {"landscape": "batio3-solid-state", "acceleration": 1000.0})
    from simulators import create_driver as sim

    furnace = Furnace(driver=sim("furnace", "furnace", {}, ctx), name="furnace", timeout_s=None)
    # the slowest program within the limits (1500 degC at 0.5 K/min, two days' dwell, cool-down) at 1000x
    assert 300 < furnace.driver.max_action_s() < 400
    assert furnace.time_limit_s == pytest.approx(2 * furnace.driver.max_action_s() + 60)
    furnace.destroy()
    ctx.close()


def test_a_remote_action_that_times_out_is_stopped_on_the_server_before_the_call_returns(tmp_path):
    """The finding: with action_timeout_s 2 the anneal timed out and park took the sample from a heating furnace."""
    with serve(tmp_path, action_timeout_s=1.0) as lab:
        make_sample(lab)
        t0 = time.monotonic()
        with pytest.raises(ActionTimeout, match=r"furnace: anneal ran past action_timeout_s = 1 s; stopped on the"):
            lab["furnace"].set({"sample_id": "s1", "program": LONG}).wait(timeout=30)
        assert time.monotonic() - t0 < 5
        server_furnace = lab.server.drivers["furnace"]  # type: ignore[attr-defined]
        assert server_furnace.readback()["heater"] == "off"  # before anything else can touch the sample
        history = str(server_furnace.world.book.get("s1").history)
        # a transfer now finds the furnace at rest, and nothing is written after it
        lab["robot"].set({"sample_id": "s1", "from": "furnace/boat1", "to": "rack/*"}).wait(timeout=30)
        time.sleep(0.5)
        assert str(server_furnace.world.book.get("s1").history).count("annealed") == history.count("annealed")


def test_every_driver_protocol_has_stop():
    from labos.devices.lab import DEVICE_CLASSES

    for _, protocol in DEVICE_CLASSES.values():
        assert "stop" in dir(protocol), protocol
    assert InstrumentSpec(kind="furnace").timeout_s == 3600.0
    assert DriverContext(0, {}).resources == {}


def test_a_campaign_whose_runengine_is_aborted_mid_anneal_records_the_attempt_interrupted(tmp_path):
    """An operator's RE.abort() (the future e-stop) ends the attempt interrupted, the run closed, the heater off."""
    from labos.core.campaign import Campaign
    from labos.data.runs import RunCatalog
    from labos.session import CampaignSession
    from labos.validate import load_campaign
    from tests.conftest import EXAMPLES

    spec = load_campaign(EXAMPLES / "solid-state.yaml").model_dump(mode="json")
    spec["simulation"]["acceleration"] = 2000.0  # a ~9 h anneal takes ~16 s
    spec["budget"]["max_experiments"] = 2
    session = CampaignSession.create(Campaign.model_validate(spec), tmp_path)
    try:
        (eid,) = session.propose(1)
        session.queue(eid)
        furnace = next(d for d in session.lab.devices.values() if isinstance(d, Furnace))
        errors: list[BaseException] = []

        def run() -> None:
            try:
                session.run(eid)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not (furnace.busy and furnace.driver.readback()["heater"] == "on"):
            assert time.monotonic() < deadline and thread.is_alive(), errors
            time.sleep(0.02)
        session.RE.abort("operator e-stop")
        thread.join(timeout=10)
        assert not thread.is_alive() and isinstance(errors[0], KeyboardInterrupt)
        settle(furnace)
        assert furnace.driver.readback()["heater"] == "off"
        assert session.store.experiment(eid).status == "interrupted"
        [attempt] = [a for a in session.store.attempts(session.id) if a.experiment_id == eid]
        assert attempt.status == "interrupted" and attempt.run_uid
    finally:
        session.close()
    with RunCatalog.open(tmp_path, session.id, create=False) as runs:
        [(uid, md)] = [r for r in runs.runs() if r[1]["start"]["plan_name"] == "labos_experiment"]
        assert uid == attempt.run_uid and md["stop"]["exit_status"] == "abort"


def test_a_campaign_whose_instrument_will_not_stop_halts_without_moving_the_sample(tmp_path, monkeypatch):
    """A furnace that times out and ignores its stop: the attempt fails, nothing is parked, the campaign stops."""
    from labos.core.campaign import Campaign
    from labos.devices import base
    from labos.failures import LabHalted
    from labos.session import CampaignSession
    from labos.validate import load_campaign
    from simulators.furnace import SimFurnace
    from tests.conftest import EXAMPLES

    spec = load_campaign(EXAMPLES / "solid-state.yaml").model_dump(mode="json")
    spec["simulation"]["acceleration"] = 2000.0
    spec["workflow"]["instruments"]["furnace"]["timeout_s"] = 1.0
    monkeypatch.setattr(base, "STOP_GRACE_S", 0.5)
    monkeypatch.setattr(SimFurnace, "stop", lambda self: None)  # a hung controller
    session = CampaignSession.create(Campaign.model_validate(spec), tmp_path)
    try:
        (eid,) = session.propose(1)
        session.queue(eid)
        with pytest.raises(LabHalted, match=r"furnace: anneal ran past its 1 s limit .* nothing was moved"):
            session.run(eid)
        record = session.store.experiment(eid)
        assert record.status == "failed" and "state and its sample's place are unknown" in (record.error or "")
        occupancy = session.lab["robot"].driver.occupancy()
        assert occupancy["furnace/boat1"] is not None  # left where it is: the park plan did not run
        assert not [slot for slot, sample in occupancy.items() if slot.startswith("rack/") and sample]
        assert not [e for e in session.store.events(session.id) if e["kind"] in ("parked", "park failed")]
    finally:
        session.lab["furnace"].driver.halt.set()  # let the hung anneal end before the lab closes
        session.close()


def test_a_sample_left_in_the_gripper_is_parked_from_there():
    """A process killed mid-transfer leaves the sample in the arm: the resume's park places it (nothing to pick)."""
    from labos.plans.park import park_plan

    sim = SimulationSpec(landscape="batio3-solid-state", acceleration=float("inf"))
    with build_lab(workflow(INSTRUMENTS), sim, seed=1) as lab:
        lab["doser"].set({"sample_id": "c1-0001-a1", "recipe": {"BaCO3": 0.5, "TiO2": 0.5}}).wait(timeout=60)
        lab["robot"].driver.pick("doser/out")  # then the process died
        assert lab["robot"].driver.holding() == "c1-0001-a1"
        moved: list[dict[str, str]] = []
        RunEngine({}, context_managers=[])(park_plan([lab["robot"]], "rack/*", {}, moved, only="c1-"))
        assert lab["robot"].driver.holding() is None
        assert [m["from"] for m in moved] == ["gripper"]
        assert lab["robot"].driver.occupancy()["rack/01"] == "c1-0001-a1"
