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

GRIPPER = "gripper"
"""The source of a transfer that only places the sample the arm already holds."""


class RobotArm(DriverDevice):
    """A robot arm driven through a :class:`~labos.devices.drivers.RobotDriver`.

    ``set({"sample_id": ..., "from": "furnace/boat1", "to": "rack/*"})`` transfers a
    sample: pick, then place. ``rack/*`` means the rack's first free slot; ``from:
    gripper`` places the sample the arm holds. Before anything moves (on the device's
    worker, not the event loop) it checks that the source holds the sample, the target
    is free and the gripper is empty, and refuses with :class:`InterlockError`
    otherwise; then it claims the target with the driver's atomic ``reserve`` (so
    two arms, or two processes, can never both find a slot free and collide there)
    and gives the claim up if the transfer fails before the sample is placed. A
    transfer whose sample is already in the gripper (one stopped between pick and
    place, then replayed) only places it. :meth:`stop` halts the arm
    where it is. ``trigger()`` reads the gripper and occupancy map.
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

    def check_transfer(self, sample_id: str | None, source: str, target: str) -> tuple[str, str, bool]:
        """Check a transfer against the occupancy map (asks the driver: blocking).

        Returns the concrete source and target slots and whether the sample must be
        picked (``False`` when the gripper already holds it).

        Raises
        ------
        InterlockError
            Picking from an empty slot (or one holding another sample), placing into
            an occupied slot, or a gripper holding another sample.
        """
        occupancy = self.driver.occupancy()
        target = self.resolve(target, occupancy)
        held = self.driver.holding()
        if held is not None and (source == GRIPPER or (sample_id is not None and held == sample_id)):
            pick = False
        elif source == GRIPPER:
            raise InterlockError(f"{self.name}: the gripper is empty: nothing to place")
        elif held is not None:
            raise InterlockError(f"{self.name}: the gripper already holds sample {held}")
        else:
            pick = True
            there = occupancy.get(source)
            if there is None:
                raise InterlockError(f"{self.name}: cannot pick from {source}: the slot is empty")
            if sample_id is not None and there != sample_id:
                raise InterlockError(f"{self.name}: {source} holds sample {there}, not {sample_id}")
        if (blocking := occupancy.get(target)) is not None:
            raise InterlockError(f"{self.name}: cannot place into {target}: it holds sample {blocking}")
        return source, target, pick

    def set(self, request: Mapping[str, Any]) -> StatusBase:
        """Transfer: ``request = {"sample_id": str | None, "from": slot | "gripper", "to": slot}``.

        The slot names are checked against the arm's limits at once; the occupancy
        checks run on the worker before the arm moves.
        """
        sample_id = request.get("sample_id")
        source, target = str(request["from"]), str(request["to"])
        if source == GRIPPER:  # placing what the arm holds: no slot to pick from
            self.check_inputs({"to": target}, fill_defaults=False)
        else:
            self.check_inputs({"from": source, "to": target})

        def work() -> None:
            src, _, pick = self.check_transfer(None if sample_id is None else str(sample_id), source, target)
            carried = self.driver.holding() if not pick else (str(sample_id) if sample_id else None)
            carried = carried or self.driver.occupancy().get(src) or ""
            # the target is claimed atomically (rack/* resolved inside the claim): the check above is advisory
            dst = self.driver.reserve(target, carried)
            dt = 0.0
            try:
                if pick:
                    dt += self.driver.pick(src)
                self.gripper.put(self.driver.holding() or "")
                dt += self.driver.place(dst)
            except BaseException:
                self.driver.release(dst, carried)  # a replay claims it again for the same sample
                raise
            self.gripper.put("")
            self.sample_id.put(str(sample_id or ""))
            self.source.put(src)
            self.target.put(dst)
            self.occupancy.put(json.dumps(self.driver.occupancy(), sort_keys=True))
            self.duration.put(dt)

        return self.run_in_thread("transfer", work)

    def trigger(self) -> StatusBase:
        """Read the gripper and the occupancy map (off the event loop)."""

        def read() -> None:
            self.gripper.put(self.driver.holding() or "")
            self.occupancy.put(json.dumps(self.driver.occupancy(), sort_keys=True))

        return self.run_in_thread("read", read)
