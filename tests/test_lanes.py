"""Lanes: several experiments in flight, instruments held by reservations, a clock that overlaps them."""

from __future__ import annotations

import copy
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from labos.core.campaign import Campaign, WorkflowSpec
from labos.core.lifecycle import State
from labos.data.lock import CampaignBusy
from labos.data.records import ExperimentRecord
from labos.data.reservations import Interrupted, Leases, reservations
from labos.data.store import Store
from labos.lanes import hold_plan
from labos.loop import decide
from simulators.clock import SimClock, Timeline
from simulators.world import SampleBook

ROOT = Path(__file__).resolve().parent.parent
LANES = yaml.safe_load((ROOT / "examples" / "lanes.yaml").read_text())


def lanes_spec(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(LANES)
    spec["data_dir"] = str(tmp_path / "data")
    spec["simulation"]["acceleration"] = math.inf
    spec.update(changes)
    return spec


def record(seq: int, status: State, **fields: Any) -> ExperimentRecord:
    values: dict[str, Any] = {
        "id": f"c-{seq:04d}",
        "campaign_id": "c",
        "seq": seq,
        "planner": "random",
        "params": {"x": seq},
        "status": status.value,
        "proposed": float(seq),
        "started": None,
        "finished": None,
        "attempts": 0,
        "run_uids": [],
        "metrics": None,
        "objectives": None,
        "error": None,
        "instrument_time_s": None,
    }
    values.update(fields)
    return ExperimentRecord(**values)


# ----------------------------------------------------------------------------- the spec
def test_a_step_names_interchangeable_instruments_of_one_kind(tmp_path):
    campaign = Campaign.model_validate(lanes_spec(tmp_path))
    anneal = campaign.workflow.steps[2]
    assert anneal.instrument == "furnace_1" and anneal.instruments == [f"furnace_{i}" for i in range(1, 5)]
    assert campaign.workflow.n_lanes == 4
    assert Campaign.model_validate(campaign.as_json()) == campaign  # stored and read back alike
    bad = lanes_spec(tmp_path)
    bad["workflow"]["steps"][2]["instruments"] = ["furnace_1", "beamline"]
    with pytest.raises(ValueError, match=r"'anneal' needs a furnace, but 'beamline' is a xrd"):
        Campaign.model_validate(bad)
    bad["workflow"]["steps"][2]["instruments"] = ["furnace_1", "furnace_1"]
    with pytest.raises(ValueError, match="instruments named twice: furnace_1"):
        Campaign.model_validate(bad)
    bad["workflow"]["steps"][2]["instrument"] = "furnace_2"
    bad["workflow"]["steps"][2]["instruments"] = ["furnace_1", "furnace_3"]
    with pytest.raises(ValueError, match="not both"):
        Campaign.model_validate(bad)


def test_each_pool_instrument_is_checked_against_its_own_limits(tmp_path):
    from labos.checks import check_campaign

    spec = lanes_spec(tmp_path)
    spec["workflow"]["instruments"]["furnace_3"] = {"kind": "furnace", "options": {"max_temperature_c": 1000}}
    problems = check_campaign(Campaign.model_validate(spec), tmp_path)
    assert any("furnace_3" in p.message and "1350" in p.message for p in problems), problems
    spec = lanes_spec(tmp_path)  # a transfer's slot on the pool must be each furnace's slot
    del spec["workflow"]["instruments"]["robot"]["options"]["stations"]["furnace_4"]
    problems = check_campaign(Campaign.model_validate(spec), tmp_path)
    assert any("furnace_4/boat1" in p.message for p in problems), problems


def test_what_an_experiment_holds_and_when():
    workflow = WorkflowSpec.model_validate(LANES["workflow"])
    holds, per_step = hold_plan(workflow)
    spans = {h.names: (h.first, h.last) for h in holds if "robot" not in h.names}
    assert spans == {
        ("doser",): (0, 1),  # the sample waits in the doser's output until it is carried away
        tuple(f"furnace_{i}" for i in range(1, 5)): (1, 3),  # from the transfer in to the transfer out
        ("beamline",): (3, 5),
        ("uvvis",): (5, 7),
    }
    robot = [(h.first, h.last) for h in holds if h.names == ("robot",)]
    assert robot == [(1, 1), (3, 3), (5, 5), (7, 7)]  # one arm, held for its own transfers only
    assert [h.names[0] for h in per_step] == [
        "doser",
        "robot",
        "furnace_1",
        "robot",
        "beamline",
        "robot",
        "uvvis",
        "robot",
    ]


# -------------------------------------------------------------------------- the loop
def test_the_loop_keeps_every_lane_busy_and_asks_with_the_others_pending(tmp_path):
    campaign = Campaign.model_validate(lanes_spec(tmp_path))
    step = decide(campaign, [], None, 0.0)
    assert (step.kind, step.n) == ("propose", 4)  # one experiment per free lane
    flying = [record(i, State.RUNNING) for i in (1, 2, 3)]
    queued = [record(4, State.QUEUED)]
    step = decide(campaign, flying + queued, None, 0.0, in_flight={"c-0001", "c-0002", "c-0003"})
    assert (step.kind, step.experiment_id) == ("run", "c-0004")  # the fourth lane is free
    done = record(1, State.COMPLETED, objectives={"f": 1.0}, finished=1.0)
    rest = [done, *flying[1:], record(4, State.RUNNING)]
    in_flight = {"c-0002", "c-0003", "c-0004"}
    assert decide(campaign, rest, None, 0.0, in_flight).kind == "tell"
    told = [record(1, State.COMPLETED, objectives={"f": 1.0}, finished=1.0, told=True), *rest[1:]]
    step = decide(campaign, told, None, 0.0, in_flight)
    assert (step.kind, step.n) == ("propose", 1)  # asynchronous: one more as soon as one lane is free
    full = [*told, record(5, State.RUNNING)]
    assert decide(campaign, full, None, 0.0, in_flight | {"c-0005"}).kind == "wait"


def test_a_running_experiment_no_lane_runs_means_recovery_first(tmp_path):
    campaign = Campaign.model_validate(lanes_spec(tmp_path))
    records = [record(1, State.RUNNING), record(2, State.RUNNING)]
    step = decide(campaign, records, None, 0.0, in_flight={"c-0001"})
    assert step.kind == "stop" and step.experiment_id == "c-0002" and "recover" in (step.message or "")


def test_a_stop_waits_for_the_lanes_then_stops(tmp_path):
    campaign = Campaign.model_validate(lanes_spec(tmp_path))
    records = [record(1, State.RUNNING), record(2, State.QUEUED)]
    assert decide(campaign, records, "asked", 0.0, in_flight={"c-0001"}).kind == "wait"  # nothing new starts
    records = [record(1, State.COMPLETED, objectives={"f": 1.0}), record(2, State.QUEUED)]
    assert decide(campaign, records, "asked", 0.0).kind == "stop"


def test_synchronous_batches_stay_synchronous(tmp_path):
    spec = lanes_spec(tmp_path)
    spec["budget"] = {"max_experiments": 16, "batch_size": 4}
    campaign = Campaign.model_validate(spec)
    records = [record(1, State.RUNNING), record(2, State.COMPLETED, objectives={"f": 1.0}, told=True)]
    assert decide(campaign, records, None, 0.0, in_flight={"c-0001"}).kind == "wait"  # the batch is not in yet


# ------------------------------------------------------------------ leases in the store
@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: Any, tmp_path: Path) -> Any:
    """Every lease test runs on SQLite and on a real PostgreSQL server (two machines would share one)."""
    target = tmp_path / "s" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with Store(target) as s:
        s.create_campaign("c1", "one", {}, None)
        s.create_campaign("c2", "two", {}, None)
        yield s


def test_one_process_owns_a_campaign_and_a_dead_ones_lease_lapses(store):
    first = Leases(store, lease_s=0.5, owner="pid 1 on alpha #1")
    second = Leases(store, lease_s=0.5, owner="pid 2 on beta #1")
    first.own("c1")
    with pytest.raises(CampaignBusy, match=r"already running \(pid 1 on alpha #1"):
        second.own("c1")
    second.own("c2")  # another campaign is another lease
    time.sleep(0.6)  # the first owner stopped renewing (killed)
    second.own("c1")
    assert store.campaign("c1").owner == "pid 2 on beta #1"
    assert store.campaign("c1").effective_status == "running"
    second.disown("c1")
    assert store.campaign("c1").owner is None


def test_a_renewed_lease_holds(store):
    first = Leases(store, lease_s=0.3, owner="a")
    first.own("c1")
    first.start()
    try:
        time.sleep(0.8)
        with pytest.raises(CampaignBusy):
            Leases(store, lease_s=0.3, owner="b").own("c1")
    finally:
        first.close()


def test_reservations_are_granted_by_priority_then_request_time_and_first_fit(store):
    a = Leases(store, owner="a")
    assert a.acquire([["furnace"]], "c1", "e1", 1) == ["furnace"]
    order: list[str] = []

    def wait(owner: str, experiment: str, wants: list[list[str]], priority: int) -> None:
        Leases(store, owner=owner).acquire(wants, "c2", experiment, 1, priority)
        order.append(experiment)

    low = threading.Thread(target=wait, args=("b", "low", [["furnace"]], 0))
    low.start()
    time.sleep(0.1)
    high = threading.Thread(target=wait, args=("c", "high", [["furnace"]], 5))
    high.start()
    time.sleep(0.1)
    # first fit: a request that can be served now is not held up by ones that cannot
    assert Leases(store, owner="d").acquire([["robot"]], "c1", "e2", 1) == ["robot"]
    assert order == []
    a.release(["furnace"], "e1")
    high.join(5)
    assert order == ["high"]  # priority first, although it asked later
    Leases(store, owner="x").release(["furnace"], "high")  # not the holder: nothing happens
    assert [r.experiment_id for r in reservations(store) if r.resource == "furnace"] == ["high"]
    store.query("SELECT 1")
    with store.transaction() as c:
        c.execute("DELETE FROM reservations WHERE experiment_id='high'")
    low.join(5)
    assert order == ["high", "low"]


def test_a_pool_gives_whichever_is_free_and_nothing_is_booked_twice(store):
    leases = [Leases(store, owner=f"p{i}") for i in range(6)]
    got: list[str] = []
    lock = threading.Lock()

    def take(i: int) -> None:
        (name,) = leases[i].acquire([["f1", "f2", "f3"]], "c1", f"e{i}", 1)
        with lock:
            got.append(name)
        time.sleep(0.2)
        leases[i].release([name], f"e{i}")

    threads = [threading.Thread(target=take, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    held = reservations(store)
    assert sorted(r.resource for r in held) == ["f1", "f2", "f3"]  # three at once, never one twice
    for t in threads:
        t.join(10)
    assert sorted(got) == ["f1", "f1", "f2", "f2", "f3", "f3"]


def test_an_instrument_a_request_cannot_use_does_not_hold_up_others(store):
    """A furnace still holding a dead owner's sample is unusable to a waiting pool request; others must not wait on it.

    The high-priority request wants a furnace and the robot; f1 is taken and f2 holds
    someone else's sample. Were f2 counted as the high request's by everyone's first fit,
    the low request (only the robot) would wait behind it for ever.
    """
    Leases(store, owner="x").acquire([["f1"]], "c1", "busy", 1)
    stranded = {"f2"}
    high = threading.Thread(
        target=lambda: Leases(store, owner="h").acquire(
            [["f1", "f2"], ["robot"]], "c2", "high", 1, 10, unusable=lambda: set(stranded)
        ),
        daemon=True,
    )
    high.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    assert Leases(store, owner="l").acquire([["robot"]], "c1", "low", 1, 0) == ["robot"]
    assert time.monotonic() - t0 < 2
    Leases(store, owner="l").release(["robot"], "low")
    stranded.clear()  # its owner's resume parked the sample: the furnace is usable again
    high.join(5)
    assert {r.resource: r.experiment_id for r in reservations(store)} == {"f1": "busy", "f2": "high", "robot": "high"}


def test_a_request_that_lapsed_while_its_process_lives_is_made_again(store):
    """A starved heartbeat let a waiting request lapse: the lane must not wait for ever on a request that is gone."""
    Leases(store, owner="x").acquire([["doser"]], "c1", "busy", 1)
    got: list[list[str]] = []
    waiter = Leases(store, lease_s=0.3, owner="w")  # no heartbeat started: its request lapses
    t = threading.Thread(target=lambda: got.append(waiter.acquire([["doser"]], "c2", "e1", 1)), daemon=True)
    t.start()
    time.sleep(0.6)  # lapsed, and removed by its own next poll
    Leases(store, owner="x").release(["doser"], "busy")
    t.join(5)
    assert got == [["doser"]]


def test_a_dead_holders_reservation_lapses_and_is_logged(store):
    dead = Leases(store, lease_s=0.3, owner="killed")
    dead.acquire([["beamline"]], "c1", "e1", 1)
    t0 = time.monotonic()
    alive = Leases(store, lease_s=5.0, owner="alive")
    assert alive.acquire([["beamline"]], "c2", "e2", 1) == ["beamline"]
    assert time.monotonic() - t0 < 0.3 + 1.0  # within its stated time (plus a poll)
    lapsed = [e for e in store.events("c1") if e["kind"] == "reservation_lapsed"]
    assert lapsed and lapsed[0]["payload"]["resource"] == "beamline" and lapsed[0]["payload"]["owner"] == "killed"


def test_a_disabled_instrument_is_not_granted(store):
    from labos.data.registry import InstrumentEntry, Registry

    reg = Registry(store)
    for name in ("furnace-a", "furnace-b"):
        reg.add(InstrumentEntry(name=name, kind="furnace", owner="ops"))
    reg.set_enabled("furnace-a", False, "thermocouple replaced")
    got = Leases(store, owner="a").acquire([["registry:furnace-a", "registry:furnace-b"]], "c1", "e1", 1)
    assert got == ["registry:furnace-b"]
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(Interrupted):
        Leases(store, owner="b").acquire([["registry:furnace-a"]], "c1", "e2", 1, cancelled=stop.is_set)
    assert store.query("SELECT COUNT(*) FROM reservation_requests")[0][0] == 0  # the withdrawn request is gone


def test_experiment_numbers_are_taken_inside_the_insert(store):
    ids: list[str] = []
    lock = threading.Lock()

    def propose() -> None:
        with Store(store.location) as mine:  # another connection, as another process would have
            for _ in range(10):
                got = mine.add_points("c1", "random", [{"x": 1}, {"x": 2}], None)
                with lock:
                    ids.extend(got)

    threads = [threading.Thread(target=propose) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 60
    assert [r.seq for r in store.experiments("c1")] == list(range(1, 61))


# ---------------------------------------------------------------------- the clock
def test_instruments_acting_at_once_overlap_in_simulated_time():
    clock = SimClock(math.inf, start=0.0)
    a, b = Timeline(clock), Timeline(clock)
    a.begin()
    b.begin()
    a.wait(3600.0)
    b.wait(3600.0)
    assert clock.now() == 3600.0  # two one-hour anneals at once take one hour, not two
    a.begin(after=100.0)  # next action on a: it was free at 3600
    assert a.wait(10.0) == 3610.0
    b.begin(after=5000.0)  # its sample was not ready before 5000
    assert b.wait(10.0) == 5010.0 and clock.now() == 5010.0


def test_simulated_instruments_log_their_own_actions(tmp_path):
    from labos.devices.drivers import DriverContext
    from simulators import create_driver

    world = tmp_path / "world.sqlite"
    simulation = {"acceleration": math.inf, "world": str(world), "landscape": "batio3-solid-state"}
    ctx = DriverContext(seed=0, simulation=simulation)
    doser = create_driver("synthesizer", "doser", {"output": "doser/out"}, ctx)
    recipe = {"BaCO3": 0.5, "TiO2": 0.5, "milling_time": 30.0}
    report = doser.synthesize("c-0001-a1", recipe)
    ctx.close()
    book = SampleBook(world)
    (action,) = book.actions("doser")
    assert action.action == "synthesize" and action.sample == "c-0001-a1" and action.holder == "c-0001"
    assert action.sim_end - action.sim_start == pytest.approx(report.duration_s)  # its simulated duration, whole
    assert ctx.identities["doser"] == f"sim:{world.resolve()}#doser"
    book.close()


def test_a_dead_owner_on_this_host_is_seen_at_once_elsewhere_only_when_its_lease_lapses(store):
    import platform
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a process that has ended: its pid names nobody now
    Leases(store, owner=f"pid {proc.pid} on {platform.node()} #1").own("c1")
    Leases(store).own("c1")  # taken over without waiting for the 30 s lease
    Leases(store, owner=f"pid {proc.pid} on another-host #1").own("c2")
    with pytest.raises(CampaignBusy, match="another-host"):  # there, only the lapse tells
        Leases(store).own("c2")


@pytest.mark.parametrize("engine", ["lane", "plain"])
def test_a_lane_ending_does_not_stop_another_lanes_action_on_a_shared_device(engine):
    """A RunEngine stops the devices its plan moved when the plan ends; a lane's must not stop another lane's action."""
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp
    import numpy as np
    from bluesky import RunEngine

    from labos.devices.lab import build_lab
    from labos.lanes import LaneRunEngine
    from simulators.world import SimSample

    workflow = WorkflowSpec.model_validate(
        {
            "instruments": {"furnace": {"kind": "furnace"}, "uv": {"kind": "uvvis"}},
            "steps": [{"action": "anneal", "instrument": "furnace"}, {"action": "measure", "instrument": "uv"}],
        }
    )
    short = {"temperature": 100.0, "dwell": 1.0, "ramp_rate": 20.0}  # 285 simulated s
    long = {"temperature": 100.0, "dwell": 30.0, "ramp_rate": 20.0}  # 2,025 simulated s
    lab = build_lab(workflow, {"acceleration": 2000.0, "landscape": "batio3-solid-state"}, 0)
    try:
        world = lab.context.resources["simulators.world"]
        for slot, name in (("furnace/boat1", "a"), ("furnace/boat2", "b")):
            state = world.landscape.make({"BaCO3": 0.5, "TiO2": 0.5}, np.random.default_rng(0))
            world.book.add(SimSample(id=name, landscape=world.landscape.name, state=state, location=slot))
        furnace = lab.devices["furnace"]

        def plan(sample: str, program: dict[str, float], then_s: float) -> Any:
            @bpp.run_decorator(md={})
            def inner() -> Any:
                yield from bps.abs_set(furnace, {"sample_id": sample, "program": program}, wait=True)
                yield from bps.sleep(then_s)

            return inner()

        first = (LaneRunEngine if engine == "lane" else RunEngine)({}, context_managers=[])
        second = LaneRunEngine({}, context_managers=[])
        a = threading.Thread(target=first, args=(plan("a", short, 0.4),))  # ends while b anneals
        a.start()
        deadline = time.monotonic() + 30
        while not world.book.actions("furnace") or furnace.busy:  # until a's anneal is over; a's plan sleeps on
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second(plan("b", long, 0.0))  # about 1 s of anneal on the same furnace
        a.join()
        (b_anneal,) = [x for x in world.book.actions("furnace") if x.sample == "b"]
        whole = b_anneal.sim_end - b_anneal.sim_start >= 2025.0 - 1e-6
        assert whole == (engine == "lane")  # a plain RunEngine's end halted b's anneal half-way
    finally:
        lab.close()
