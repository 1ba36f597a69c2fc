"""A simulated six-axis robot arm carrying sample holders between station slots."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from labos.core.errors import DeviceFault, InterlockError
from labos.devices.drivers import InputSpec
from simulators.instrument import SimInstrument, halts
from simulators.options import RobotOptions
from simulators.world import FaultPlan, SimWorld


class SimRobotArm(SimInstrument):
    """Implements :class:`~labos.devices.drivers.RobotDriver` on a :class:`SimWorld`.

    Options
    -------
    stations
        ``{station: [slot, ...]}`` the arm reaches, e.g. ``{furnace: [boat1], beamline: [stage]}``;
        an integer instead of a list makes a rack of numbered slots (``rack: 24`` gives
        ``rack/01`` ... ``rack/24``).
    positions
        ``{station: [x, y, z]}`` in metres, for move times (defaults spread stations 1 m apart).
    speed_m_per_s
        Tool speed between stations.
    faults
        ``{fault: probability}``: ``jam`` (gripper), ``disconnect`` (controller),
        ``timeout`` (motion not confirmed).
    """

    FAULTS: ClassVar[dict[str, str]] = {
        "jam": "gripper jammed while closing",
        "disconnect": "lost connection to the robot controller",
        "timeout": "motion not confirmed by the controller within 30 s",
    }

    def __init__(self, name: str, world: SimWorld, options: Mapping[str, Any]) -> None:
        opts = RobotOptions.parse(options, name)
        super().__init__(name, world)
        self.slots: list[str] = []
        self.racks: list[str] = []
        for station, slots in opts.stations.items():
            if isinstance(slots, int):
                self.racks.append(station)
                self.slots += [f"{station}/{i:02d}" for i in range(1, slots + 1)]
            else:
                self.slots += [f"{station}/{s}" for s in slots]
        self.positions = {st: opts.positions.get(st, (float(i), 0.0, 0.3)) for i, st in enumerate(opts.stations)}
        self.speed = opts.speed_m_per_s
        self.faults = FaultPlan(name, self.FAULTS, opts.faults)
        self.gripper_location = f"gripper:{name}"
        self.at = next(iter(self.positions))

    def inputs(self) -> list[InputSpec]:
        """``from`` and ``to``: any slot; ``to`` also a rack's first free slot (``rack/*``)."""
        slots = tuple(self.slots)
        wild = tuple(f"{r}/*" for r in self.racks)
        return [
            InputSpec("from", "choice", choices=slots, description="slot to pick the sample from"),
            InputSpec("to", "choice", choices=slots + wild, description="slot to place it in"),
        ]

    def occupancy(self) -> dict[str, str | None]:
        """Every slot with its sample (or ``None``)."""
        taken: dict[str, str] = {}
        for station in {s.split("/")[0] for s in self.slots}:
            taken.update(self.world.book.occupied(station + "/"))
        return {slot: taken.get(slot) for slot in self.slots}

    def holding(self) -> str | None:
        """The sample in the gripper."""
        return self.world.book.at(self.gripper_location)

    def reserve(self, slot: str, sample_id: str) -> str:
        """Claim ``slot`` (``rack/*``: the rack's first free slot) for ``sample_id``, atomically; the slot.

        Raises
        ------
        InterlockError
            If the slot (every slot of the rack) holds or is reserved for another sample.
        """
        if slot.endswith("/*") and slot[:-2] in self.racks:
            candidates = [s for s in self.slots if s.startswith(slot[:-1])]
        else:
            self._slot(slot)
            candidates = [slot]
        try:
            return self.world.book.reserve(candidates, sample_id, self.name)
        except ValueError as exc:
            raise InterlockError(f"{self.name}: cannot reserve {slot} for sample {sample_id}: {exc}") from None

    def release(self, slot: str, sample_id: str) -> None:
        """Give up ``sample_id``'s reservation of ``slot``."""
        self.world.book.release(slot, sample_id)

    def _travel(self, slot: str) -> float:
        station = slot.split("/")[0]
        a, b = self.positions[self.at], self.positions[station]
        dt = 4.0 + math.dist(a, b) / self.speed  # approach + straight-line move
        self.sleep(dt)
        self.at = station
        return dt

    def _slot(self, slot: str) -> None:
        if slot not in self.slots:
            raise DeviceFault(self.name, f"no slot {slot!r}; reachable: {', '.join(self.slots)}")

    @halts("the arm is halted where it is")
    def pick(self, slot: str) -> float:
        """Move to ``slot`` and close the gripper on its sample."""
        self._slot(slot)
        sample = self.world.book.at(slot)
        self.on_sample(sample)
        rng = self.world.rng_for(self.name, sample, f"pick {slot}")
        self.faults.check("disconnect", rng)
        if (held := self.holding()) is not None:
            raise DeviceFault(self.name, f"gripper already holds sample {held}")
        if sample is None:
            raise DeviceFault(self.name, f"nothing to pick at {slot}: the slot is empty")
        dt = self._travel(slot)
        self.faults.check("jam", rng)
        self.sleep(3.0)
        self.world.book.move(sample, self.gripper_location, f"picked from {slot} by {self.name}")
        self.faults.check("timeout", rng)
        return dt + 3.0

    @halts("the arm is halted where it is, holding the sample")
    def place(self, slot: str) -> float:
        """Move to ``slot`` and release the held sample there."""
        self._slot(slot)
        sample = self.holding()
        self.on_sample(sample)
        self.faults.check("disconnect", self.world.rng_for(self.name, sample, f"place {slot}"))
        if sample is None:
            raise DeviceFault(self.name, "gripper is empty: nothing to place")
        if (there := self.world.book.at(slot)) is not None:
            raise DeviceFault(self.name, f"cannot place at {slot}: it holds sample {there}")
        if (claim := self.world.book.reserved(slot)) not in (None, sample):
            raise InterlockError(f"{self.name}: cannot place {sample} at {slot}: it is reserved for sample {claim}")
        dt = self._travel(slot)
        self.sleep(3.0)
        try:
            self.world.book.move(sample, slot, f"placed at {slot} by {self.name}")
        except ValueError as exc:  # claimed by another arm while this one moved: it keeps the sample
            raise InterlockError(f"{self.name}: cannot place {sample} at {slot}: {exc}") from None
        return dt + 3.0

    def close(self) -> None:
        """Nothing to release in simulation."""
