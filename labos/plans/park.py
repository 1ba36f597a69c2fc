"""Recovery as a plan: carry samples stranded by a failed experiment to a parking rack."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import FailedStatus, MsgGenerator

from labos.core.errors import DeviceFault
from labos.devices.robot import GRIPPER, RobotArm


def stranded(robot: RobotArm, park: str, only: str = "") -> MsgGenerator[list[tuple[str, str]]]:
    """``(where, sample)`` for the sample in the gripper and every sample outside ``park``'s station.

    Reads the arm (trigger and read, no run, no documents). ``only``: just the samples
    whose ids start with it (one experiment's, ``<experiment id>-a``).
    """
    yield from bps.trigger(robot, wait=True)
    reading = yield from bps.read(robot)
    held = str(reading[f"{robot.name}_gripper"]["value"])
    occupancy: dict[str, str | None] = json.loads(reading[f"{robot.name}_occupancy"]["value"])
    station = park.split("/")[0] + "/"
    out = [(GRIPPER, held)] if held and held.startswith(only) else []
    out += [
        (slot, s) for slot, s in sorted(occupancy.items()) if s and not slot.startswith(station) and s.startswith(only)
    ]
    return out


def _transfer(robot: RobotArm, sample: str, source: str, park: str, tries: int) -> MsgGenerator[None]:
    """One transfer; a transient fault (a jam, a timeout) gets ``tries - 1`` more tries."""
    for attempt in range(1, tries + 1):
        try:
            yield from bps.abs_set(robot, {"sample_id": sample, "from": source, "to": park}, wait=True)
            return
        except FailedStatus as exc:
            cause = exc.__cause__
            if attempt == tries or not (isinstance(cause, DeviceFault) and cause.transient):
                raise
            if source != GRIPPER:  # the fault may have struck after the pick
                held = (yield from stranded(robot, park))[:1]
                source = GRIPPER if held and held[0] == (GRIPPER, sample) else source


def park_plan(
    robots: Sequence[RobotArm],
    park: str,
    md: Mapping[str, Any],
    moved: list[dict[str, str]],
    *,
    tries: int = 2,
    only: str = "",
) -> MsgGenerator[None]:
    """Carry every stranded sample to ``park`` (``rack/*``: the first free slot), as one Bluesky run.

    The arms are read first, outside any run; a run (``plan_name: labos_park``) is opened
    only when something is stranded, and records each arm before and after every
    transfer. ``only``: just the samples whose ids start with it (one experiment's: lanes
    running beside it keep theirs). The transfers are ordinary ``set``s, so they pass the same limit and
    occupancy interlocks as any move. Each transfer is appended to ``moved``
    (``robot``, ``sample_id``, ``from``, ``to``) as it completes.
    """
    todo = []
    for robot in robots:
        todo += [(robot, where, sample) for where, sample in (yield from stranded(robot, park, only))]
    if not todo:
        return

    @bpp.run_decorator(md={**md, "plan_name": "labos_park", "park": park})  # type: ignore[untyped-decorator]
    def inner() -> MsgGenerator[None]:
        for robot, where, sample in todo:
            yield from _transfer(robot, sample, where, park, tries)
            reading = yield from bps.trigger_and_read([robot], name=robot.name)
            to = str(reading[f"{robot.name}_target"]["value"])
            moved.append({"robot": robot.name, "sample_id": sample, "from": where, "to": to})

    yield from inner()
