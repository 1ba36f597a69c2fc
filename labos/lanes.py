"""Lanes: several experiments of one campaign in flight at once, each holding the instruments it uses.

A *lane* is one experiment running on its own RunEngine (:class:`Lane`), so the same
code runs in this process (the embedded default: one thread per lane) or, later, as a
Prefect task on a worker beside its instruments: its inputs are a campaign id, an
experiment id and the store. What an experiment holds, and when, is decided here from
the workflow alone (:func:`hold_plan`), and held through the store's reservations
(:class:`~labos.data.reservations.Leases`), so lanes of one campaign, and campaigns of
several people, share the facility's instruments without double booking:

- a step on interchangeable instruments (``instruments: [furnace-1, furnace-2]``) gets
  whichever is free, and a transfer's slot on that pool (``furnace-1/boat1``) means the
  one the experiment got;
- an instrument whose station a transfer puts the sample into is held from that
  transfer until the transfer that takes the sample out (no other sample can go in
  meanwhile);
- a robot arm is held for its own transfers only, so one arm serves every lane;
- after a failure, everything stays held until the experiment's own samples are parked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bluesky import RunEngine

from labos.core.campaign import WorkflowSpec
from labos.core.errors import DeviceFault
from labos.core.space import ParamValue
from labos.data.documents import RunReadings
from labos.data.reservations import Leases
from labos.plans.experiment import PlannedStep


@dataclass(frozen=True)
class Hold:
    """Instruments an experiment holds together: one of ``names``, from step ``first`` to the end of step ``last``."""

    names: tuple[str, ...]
    first: int
    last: int


def hold_plan(workflow: WorkflowSpec) -> tuple[list[Hold], list[Hold]]:
    """What an experiment of ``workflow`` holds and when: every :class:`Hold`, and each step's own.

    The second list gives, for each step, the hold of the instrument that does it.
    """
    robots = {name for name, spec in workflow.instruments.items() if spec.kind == "robot"}
    spans: dict[tuple[str, ...], list[int]] = {}
    actor: list[tuple[tuple[str, ...], int]] = []
    for i, step in enumerate(workflow.steps):
        key = tuple(step.instruments)
        actor.append((key, i))
        if not set(key) & robots:
            spans.setdefault(key, []).append(i)
    for i, step in enumerate(workflow.steps):
        if step.action != "transfer":
            continue
        for slot in (step.options.get("from"), step.options.get("to")):
            station = str(slot).split("/")[0] if isinstance(slot, str) else None
            for key, used in spans.items():
                if station in key and i not in used:
                    used.append(i)
    holds = {key: Hold(key, min(used), max(used)) for key, used in spans.items()}
    steps: list[Hold] = []
    robot_holds: list[Hold] = []
    for key, i in actor:
        if key in holds:
            steps.append(holds[key])
        else:
            robot = Hold(key, i, i)
            robot_holds.append(robot)
            steps.append(robot)
    return [*holds.values(), *robot_holds], steps


class Claims:
    """One attempt's reservations, step by step (the :class:`~labos.plans.experiment.StepHooks` of its plan).

    Parameters
    ----------
    leases
        This process's leases in the store.
    workflow
        The campaign's workflow.
    identity
        The reservation key of a local instrument name.
    campaign_id, experiment_id, attempt, priority
        Who holds what is reserved, and where its requests queue.
    on_wait
        Called with what a step waits for, when it has to.
    occupancy
        The robots' slot -> sample map, asked while instruments are awaited: an
        instrument whose station still holds a sample someone else left there is not
        given, though nobody holds it (see :meth:`_unusable`).
    """

    def __init__(
        self,
        leases: Leases,
        workflow: WorkflowSpec,
        identity: Callable[[str], str],
        campaign_id: str,
        experiment_id: str,
        attempt: int,
        priority: int = 0,
        on_wait: Callable[[list[str]], None] | None = None,
        occupancy: Callable[[], Mapping[str, str | None]] | None = None,
    ) -> None:
        self.leases = leases
        self.occupancy = occupancy
        self.workflow = workflow
        self.identity = identity
        self.campaign_id = campaign_id
        self.experiment_id = experiment_id
        self.attempt = attempt
        self.priority = priority
        self.on_wait = on_wait
        self.holds, self.step_holds = hold_plan(workflow)
        self.chosen: dict[Hold, str] = {}
        self.held: dict[Hold, str] = {}
        self.used: list[str] = []
        """Every instrument the attempt was granted, in order."""
        self.cancel = threading.Event()
        self.revoked: tuple[str, str] | None = None
        """(instrument, why) when an operator disabled an instrument this attempt holds, aborting its work."""

    def acquire(self, holds: Sequence[Hold]) -> None:
        """Hold one instrument of each of ``holds`` (waiting for them; instruments already held are skipped)."""
        holding = {h.names for h in self.held}
        need = [h for h in dict.fromkeys(holds) if h.names not in holding]
        if not need:
            return
        wants = [[self.identity(n) for n in h.names] for h in need]
        picks = self.leases.acquire(
            wants,
            self.campaign_id,
            self.experiment_id,
            self.attempt,
            self.priority,
            cancelled=self.cancel.is_set,
            on_wait=self.on_wait,
            unusable=self._unusable(need) if self.occupancy is not None else None,
        )
        for hold, resource, keys in zip(need, picks, wants, strict=True):
            name = hold.names[keys.index(resource)]
            self.chosen[hold] = name
            self.held[hold] = resource
            if name not in self.used:
                self.used.append(name)

    def _unusable(self, need: Sequence[Hold]) -> Callable[[], set[str]]:
        """What of ``need`` holds a sample left by someone else (reservation keys), asked at every poll.

        An instrument whose station holds a sample of another campaign (its process died,
        or it halted, with the sample inside; its resume parks it) is waited for, not
        given: the step would fail on it. In a pool, one holding a sample of another
        experiment of this campaign (a park that failed) is passed over too; a single
        instrument is then given, and the step fails cleanly, as nobody else would move it.
        """
        pooled = {n for h in need if len(h.names) > 1 for n in h.names}
        single = {n for h in need if len(h.names) == 1 for n in h.names}
        mine, ours = f"{self.experiment_id}-a", f"{self.campaign_id}-"
        occupancy = self.occupancy
        assert occupancy is not None

        def unusable() -> set[str]:
            try:
                occupied = occupancy()
            except Exception:  # noqa: BLE001 - a robot that cannot say: the step meets it, and fails cleanly
                return set()
            out = set()
            for slot, sample in occupied.items():
                station = slot.split("/", 1)[0]
                if not sample or sample.startswith(mine):
                    continue
                if station in pooled or (station in single and not sample.startswith(ours)):
                    out.add(self.identity(station))
            return out

        return unusable

    def before(self, i: int, step: PlannedStep) -> PlannedStep:
        """Hold what step ``i`` needs from now on; the step on the instruments and slots this attempt got.

        Raises
        ------
        DeviceFault
            (transient) If an operator disabled an instrument this attempt holds and aborted its work.
        """
        if self.revoked is not None:
            raise DeviceFault(self.revoked[0], self.revoked[1], transient=True)
        self.acquire([h for h in self.holds if h.first == i] + [self.step_holds[i]])
        inputs = dict(step.inputs)
        if step.action == "transfer":
            for key in ("from", "to"):
                if key in inputs:
                    inputs[key] = self.slot(inputs[key])
        return PlannedStep(step.action, self.chosen[self.step_holds[i]], inputs)

    def slot(self, slot: ParamValue) -> ParamValue:
        """``slot`` for this attempt: a station of a held instrument's pool is the instrument it got."""
        if not isinstance(slot, str) or "/" not in slot:
            return slot
        station, rest = slot.split("/", 1)
        for hold, name in self.chosen.items():
            if station in hold.names and len(hold.names) > 1:
                return f"{name}/{rest}"
        return slot

    def after(self, i: int) -> None:
        """Step ``i`` succeeded: give back what no later step needs."""
        self.release([h for h in self.held if h.last == i])

    def release(self, holds: Sequence[Hold] | None = None) -> None:
        """Give back ``holds`` (default: everything held)."""
        holds = list(self.held) if holds is None else holds
        resources = [self.held.pop(h) for h in holds if h in self.held]
        self.leases.release(resources, self.experiment_id)


class LaneRunEngine(RunEngine):
    """A RunEngine that shares its devices with other lanes' RunEngines.

    A RunEngine calls ``stop()`` on every device its plan moved when the plan ends,
    pauses or is aborted. With lanes, a device one plan moved (the robot arm) may be
    acting for another lane's plan by then: stopping it would halt that lane's action
    (its status completing as if done). This RunEngine stops only the devices whose
    running action its own plan started (the action's starting thread is this
    RunEngine's event loop), or that are idle; an operator's ``stop()`` on a device, or a
    RunEngine's own abort, still stops what that RunEngine was doing at once.
    """

    async def _stop_movable_objects(self, *, success: bool = True) -> None:
        me = threading.get_ident()
        mine = {obj for obj in self._movable_objs_touched if getattr(obj, "action_thread", me) in (me, None)}
        others = self._movable_objs_touched - mine
        self._movable_objs_touched -= others
        try:
            await super()._stop_movable_objects(success=success)
        finally:
            self._movable_objs_touched |= others


@dataclass
class Lane:
    """One lane's RunEngine and what it read of the run it is making."""

    index: int
    RE: RunEngine = field(default_factory=lambda: LaneRunEngine({}, context_managers=[]))
    readings: RunReadings = field(default_factory=RunReadings)

    def __post_init__(self) -> None:
        self.RE.subscribe(lambda name, doc: self.readings(name, doc))

    def begin(self) -> RunReadings:
        """A fresh capture for the next run (the last one's object is kept by whoever took it)."""
        self.readings = RunReadings()
        return self.readings
