"""Two arms, one free slot: the target is claimed atomically, so only one transfer moves.

The finding: two concurrent transfers into one slot both passed the device's
occupancy check (check-then-move); only the simulator stopped the second, at the
place, leaving its sample in the gripper.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from labos.core.errors import InterlockError
from labos.devices.drivers import DriverContext
from labos.devices.robot import RobotArm
from simulators import create_driver
from simulators.world import SampleBook, SimSample

pytestmark = pytest.mark.unit

STATIONS = {"doser": ["a", "b"], "furnace": ["boat1"], "rack": 2}


def _arms(ctx: DriverContext) -> tuple[RobotArm, RobotArm]:
    return tuple(  # type: ignore[return-value]
        RobotArm(driver=create_driver("robot", name, {"stations": STATIONS}, ctx), name=name, timeout_s=30)
        for name in ("arm1", "arm2")
    )


@pytest.fixture
def two_arms() -> Iterator[tuple[RobotArm, RobotArm]]:
    """Two arms over one simulated world, samples s1 in doser/a and s2 in doser/b."""
    ctx = DriverContext(0, {"landscape": "batio3-solid-state", "acceleration": 200.0})
    arms = _arms(ctx)
    for sid, slot in (("s1", "doser/a"), ("s2", "doser/b")):
        arms[0].driver.world.book.add(SimSample(id=sid, landscape="batio3-solid-state", state={}, location=slot))
    yield arms
    for arm in arms:
        arm.destroy()
    ctx.close()


def _race(arms: tuple[RobotArm, RobotArm], requests: list[dict]) -> list[BaseException | None]:
    """Both transfers start together, after both arms' occupancy checks have passed."""
    barrier = threading.Barrier(2)
    outcome: list[BaseException | None] = [None, None]
    for arm in arms:
        real = arm.check_transfer

        def checked(*args, _real=real):
            result = _real(*args)
            barrier.wait(timeout=10)  # both found the target free: the old check-then-move race
            return result

        arm.check_transfer = checked  # type: ignore[method-assign]
    statuses = [arm.set(req) for arm, req in zip(arms, requests, strict=True)]
    for i, st in enumerate(statuses):
        try:
            st.wait(timeout=30)
        except Exception as exc:  # noqa: BLE001 - the loser's refusal is the point
            outcome[i] = exc
    return outcome


def test_two_arms_racing_for_one_slot_one_moves_the_other_is_refused_before_picking(two_arms):
    arms = two_arms
    book = arms[0].driver.world.book
    outcome = _race(
        arms,
        [
            {"sample_id": "s1", "from": "doser/a", "to": "furnace/boat1"},
            {"sample_id": "s2", "from": "doser/b", "to": "furnace/boat1"},
        ],
    )
    winner = 0 if outcome[0] is None else 1
    loser = 1 - winner
    assert outcome[winner] is None
    assert isinstance(outcome[loser], InterlockError)
    assert "cannot reserve furnace/boat1" in str(outcome[loser]) and "reserved for sample" in str(outcome[loser])
    assert book.at("furnace/boat1") == ("s1", "s2")[winner]
    assert book.at(("doser/a", "doser/b")[loser]) == ("s1", "s2")[loser]  # never picked
    assert arms[loser].driver.holding() is None and arms[winner].driver.holding() is None
    assert book.reserved("furnace/boat1") is None  # the claim ended when the sample arrived


def test_two_arms_filling_a_rack_at_once_get_different_slots(two_arms):
    arms = two_arms
    book = arms[0].driver.world.book
    outcome = _race(
        arms,
        [
            {"sample_id": "s1", "from": "doser/a", "to": "rack/*"},
            {"sample_id": "s2", "from": "doser/b", "to": "rack/*"},
        ],
    )
    assert outcome == [None, None]
    assert {book.get("s1").location, book.get("s2").location} == {"rack/01", "rack/02"}


def test_a_reservation_is_one_step_across_connections_and_lapses(tmp_path):
    a, b = SampleBook(tmp_path / "w.sqlite"), SampleBook(tmp_path / "w.sqlite")
    a.add(SimSample(id="s1", landscape="x", state={}, location="doser/a"))
    a.add(SimSample(id="s2", landscape="x", state={}, location="doser/b"))
    assert a.reserve(["rack/01", "rack/02"], "s1", "arm1") == "rack/01"
    assert b.reserve(["rack/01", "rack/02"], "s2", "arm2") == "rack/02"  # the other connection sees the claim
    assert a.reserve(["rack/01"], "s1", "arm1") == "rack/01"  # renewing one's own claim
    with pytest.raises(ValueError, match="rack/01 is reserved for sample s1 by arm1"):
        b.move("s2", "rack/01", "placed")
    with pytest.raises(ValueError, match="doser/a holds sample s1"):
        b.reserve(["doser/a"], "s2", "arm2")
    b.release("rack/02", "s2")
    assert a.reserved("rack/02") is None
    assert b.reserve(["rack/03"], "s2", "arm2", ttl_s=-1.0) == "rack/03"  # a claim a crashed process left: lapsed
    assert a.reserve(["rack/03"], "s1", "arm1") == "rack/03"
    a.close()
    b.close()
