"""An ophyd device for a robot arm that carries samples between station slots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ophyd import Component as Cpt
from ophyd import Signal
from ophyd.status import StatusBase

from labos.core.errors import InterlockError
from labos.devices.base import DriverDevice
from labos.devices.drivers import RobotDriver


class RobotArm(DriverDevice):
    """A robot arm driven through a :class:`~labos.devices.drivers.RobotDriver`.

    ``set({"sample_id": ..., "from": "furnace/boat1", "to": "rack/*"})`` transfers a
    sample: pick, then place. ``rack/*`` means the rack's first free slot. Before
    anything moves it checks that the source holds the sample, the target is free
    and the gripper is empty, and refuses with :class:`InterlockError` otherwise.
    Readings: the sample, source and target slots, the gripper and the occupancy map.
    """

    sample_id = Cpt(Signal, value="", kind="hinted")
    source = Cpt(Signal, value="", kind="normal")
    target = Cpt(Signal, value="", kind="normal")
    gripper = Cpt(Signal, value="", kind="normal", doc="the sample held, or empty")
    occupancy = Cpt(Signal, value="{}", kind="normal", doc="slot -> sample (JSON)")
    duration = Cpt(Signal, value=0.0, kind="normal", metadata={"units": "s"})

    driver: RobotDriver

    def resolve(self, slot: str, occupancy: Mapping[str, str | None]) -> str:
        """A concrete slot: ``rack/*`` becomes the rack's first free slot."""
        if not slot.endswith("/*"):
            return slot
        station = slot[:-1]
        free = [s for s, sample in occupancy.items() if s.startswith(station) and sample is None]
        if not free:
            raise InterlockError(f"{self.name}: no free slot in {slot[:-2]} (all {len(occupancy)} full)")
        return sorted(free)[0]

    def check_transfer(self, sample_id: str | None, source: str, target: str) -> tuple[str, str]:
        """Check a transfer against limits and the occupancy map; returns concrete slots.

        Raises
        ------
        InterlockError
            Picking from an empty slot (or one holding another sample), placing into
            an occupied slot, or a full gripper.
        OutOfBoundsError
            An unknown slot.
        """
        self.check_inputs({"from": source, "to": target})
        occupancy = self.driver.occupancy()
        target = self.resolve(target, occupancy)
        held = self.driver.holding()
        if held is not None:
            raise InterlockError(f"{self.name}: the gripper already holds sample {held}")
        there = occupancy.get(source)
        if there is None:
            raise InterlockError(f"{self.name}: cannot pick from {source}: the slot is empty")
        if sample_id is not None and there != sample_id:
            raise InterlockError(f"{self.name}: {source} holds sample {there}, not {sample_id}")
        if (blocking := occupancy.get(target)) is not None:
            raise InterlockError(f"{self.name}: cannot place into {target}: it holds sample {blocking}")
        return source, target

    def set(self, request: Mapping[str, Any]) -> StatusBase:
        """Transfer: ``request = {"sample_id": str | None, "from": slot, "to": slot}``."""
        sample_id = request.get("sample_id")
        source, target = self.check_transfer(
            None if sample_id is None else str(sample_id), str(request["from"]), str(request["to"])
        )

        def work() -> None:
            dt = self.driver.pick(source)
            self.gripper.put(self.driver.holding() or "")
            dt += self.driver.place(target)
            self.gripper.put("")
            self.sample_id.put(str(sample_id or ""))
            self.source.put(source)
            self.target.put(target)
            self.occupancy.put(json.dumps(self.driver.occupancy(), sort_keys=True))
            self.duration.put(dt)

        return self.run_in_thread("transfer", work)

    def where(self, sample_id: str) -> str | None:
        """The slot holding ``sample_id`` (``gripper`` if the arm holds it), or ``None``."""
        if self.driver.holding() == sample_id:
            return "gripper"
        for slot, sample in self.driver.occupancy().items():
            if sample == sample_id:
                return slot
        return None

    def clear(self, sample_id: str, to: str) -> tuple[str, str] | None:
        """Move ``sample_id`` to ``to`` from wherever the arm can reach it (blocking).

        Used to recover after a failed experiment, so that the next one finds its slots
        free. Returns ``(where it was, the slot it went to)``, or ``None`` if the arm
        cannot reach it.
        """
        here = self.where(sample_id)
        if here is None:
            return None
        target = self.resolve(to, self.driver.occupancy())
        if here != "gripper":
            self.driver.pick(here)
        self.driver.place(target)
        return here, target
