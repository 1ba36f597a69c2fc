"""Running one attempt of an experiment as a Bluesky run, ending it in the store, and clearing up after it.

:class:`AttemptRunner` drives the lanes' RunEngines for a :class:`~labos.session.CampaignSession`:
an attempt is recorded ``running`` before its plan starts, holds the instruments of each
step as the step comes (:mod:`labos.lanes`), and ends ``measured``, back in the queue (a
transient fault with retries left) or ``failed`` with its cause; then the recovery plan
parks the samples it stranded.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bluesky.utils import RunEngineInterrupted

from labos import control
from labos.core.campaign import Campaign
from labos.core.errors import InstrumentStateUnknown, StoreError
from labos.core.lifecycle import Cause, State
from labos.data.documents import RunReadings
from labos.data.reservations import Interrupted, Leases
from labos.data.store import Store
from labos.devices.lab import Lab
from labos.devices.robot import GRIPPER, RobotArm
from labos.failures import Failure, LabHalted, SoftwareError, classify, root_cause
from labos.lanes import Claims, Hold, Lane
from labos.plans.experiment import experiment_plan, resolve_steps
from labos.plans.park import park_plan


class AttemptRunner:
    """Attempts of one campaign's experiments, each on a lane's RunEngine, several at once.

    Parameters
    ----------
    campaign, campaign_id, data_dir, store, lab, consumers
        The campaign and what it runs on (``consumers``: which step takes which parameter).
    leases
        This process's leases in the store: the instruments each step holds.
    lanes
        The lanes' RunEngines: as many attempts can run at once (one per calling thread).
    prepare
        Called before every attempt is recorded: opens the run catalog (or starts to) and
        waits until the catalog's thread has imported what the simulators compute with.
    identity
        An instrument's reservation key, by its local name.
    """

    def __init__(
        self,
        campaign: Campaign,
        campaign_id: str,
        data_dir: Path,
        store: Store,
        lab: Lab,
        consumers: dict[int, dict[str, str]],
        leases: Leases,
        lanes: list[Lane],
        prepare: Callable[[], None],
        identity: Callable[[str], str],
    ) -> None:
        self.campaign = campaign
        self.id = campaign_id
        self.data_dir = data_dir
        self.store = store
        self.lab = lab
        self.consumers = consumers
        self.leases = leases
        self.lanes = lanes
        self.prepare = prepare
        self.identity = identity
        self._free: queue.SimpleQueue[Lane] = queue.SimpleQueue()
        for lane in lanes:
            self._free.put(lane)
        self._made: dict[str, RunReadings] = {}
        self._made_lock = threading.Lock()
        self._aborts: dict[int, Callable[[str], None]] = {}  # lane index -> how to abort its attempt
        self._claims: dict[str, Claims] = {}  # experiment id -> its running attempt's reservations
        self.last: RunReadings = lanes[0].readings
        """What the last run that ended was read as (the run this process made most recently)."""

    def readings_of(self, run_uid: str) -> RunReadings | None:
        """The readings of a run this process made and nobody has taken yet (they are taken once)."""
        with self._made_lock:
            return self._made.pop(run_uid, None)

    def run(self, experiment_id: str) -> dict[str, Any]:
        """Run one attempt of a queued experiment as one Bluesky run.

        The attempt is recorded ``running`` before the plan starts. It ends ``measured``
        (raw data whole, analysis next), back in the queue (a transient instrument fault
        with retries left, after a backoff) or ``failed`` with its cause.

        Returns
        -------
        dict
            ``{"attempt", "state", "run_uid", "error", "cause"}``.

        Raises
        ------
        SoftwareError
            If the attempt failed through a bug (recorded, with the traceback).
        LabHalted
            If an instrument's state became unknown (an action that would not end even
            when stopped): the attempt is recorded failed and nothing is parked.
        KeyboardInterrupt
            If the run was aborted by the user, or the RunEngine aborted or paused from
            another thread (the attempt is recorded ``interrupted``; a paused RunEngine is
            aborted, so the run is closed and the instruments are at rest).
        StoreError
            If the run's record could not be written (tiled or the store); the attempt is
            recorded ``interrupted`` where the store still can, so ``labos resume`` runs it again.
        """
        lane = self._free.get()  # one is free: the loop runs no more attempts than there are lanes
        try:
            return self._run(experiment_id, lane)
        finally:
            self._free.put(lane)

    def _run(self, experiment_id: str, lane: Lane) -> dict[str, Any]:
        record = self.store.experiment(experiment_id)
        self.prepare()  # every document is written (journaled until tiled is open); scipy imports settled
        attempt = self.store.start_attempt(experiment_id)
        steps = resolve_steps(self.campaign.workflow.steps, record.params, self.consumers)
        md = {
            "campaign_id": self.id,
            "campaign": self.campaign.name,
            "experiment_id": experiment_id,
            "seq": record.seq,
            "attempt": attempt,
            "lane": lane.index,
            "parameters": dict(record.params),
            "planner": record.planner,
            "planner_options": dict(self.campaign.planner.options),
        }
        sample_id = f"{experiment_id}-a{attempt}"
        claims = Claims(
            self.leases,
            self.campaign.workflow,
            self.identity,
            self.id,
            experiment_id,
            attempt,
            self.campaign.priority,
            on_wait=lambda what: self._waiting(experiment_id, what),
            occupancy=self._occupancy,
        )
        readings = lane.begin()
        pools = [s.instruments for s in self.campaign.workflow.steps]
        failure: Failure | None = None

        def abort(reason: str) -> None:
            claims.cancel.set()  # a lane waiting for instruments gives up
            lane.RE.abort(reason)

        self._aborts[lane.index] = abort
        self._claims[experiment_id] = claims
        try:
            try:
                with control.abortable(abort):
                    lane.RE(experiment_plan(self.lab.devices, steps, sample_id, md, claims, pools))
            except KeyboardInterrupt:
                self._end(
                    experiment_id, attempt, Failure("aborted by the user", Cause.INTERRUPTED, False), readings, claims
                )
                raise
            except RunEngineInterrupted as exc:  # RE.abort() or RE.pause() from another thread (an operator's stop)
                if lane.RE.state == "paused":  # nobody resumes it from here: close the run, instruments at rest
                    lane.RE.abort("the campaign stopped while its RunEngine was paused")
                interrupted = Failure("aborted on the RunEngine", Cause.INTERRUPTED, False)
                self._end(experiment_id, attempt, interrupted, readings, claims)
                raise KeyboardInterrupt(f"experiment {experiment_id}: the RunEngine was aborted") from exc
            except Exception as exc:  # sorted into causes; a store failure or software error is re-raised
                root = root_cause(exc)
                if isinstance(root, StoreError):  # the record cannot be written: stop; the experiment reruns on resume
                    with contextlib.suppress(StoreError):  # a store that cannot write this either: recovery will
                        self._end(
                            experiment_id, attempt, Failure(str(root), Cause.INTERRUPTED, False), readings, claims
                        )
                    raise root from exc
                if isinstance(root, Interrupted):  # aborted while it waited for an instrument
                    self._end(experiment_id, attempt, Failure(str(root), Cause.INTERRUPTED, False), readings, claims)
                    raise KeyboardInterrupt(f"experiment {experiment_id}: {root}") from exc
                failure = classify(exc)
                if claims.revoked is not None:  # an operator disabled an instrument it held, aborting its work
                    failure = Failure(f"{claims.revoked[1]} ({failure.reason})", Cause.INSTRUMENT, True)
                if isinstance(root, InstrumentStateUnknown):  # no recovery moves into an instrument that may be acting
                    self._end(experiment_id, attempt, failure, readings, claims)
                    raise LabHalted(
                        f"experiment {experiment_id}: {root}. The campaign stops; nothing was moved. "
                        f"Once the instrument is checked and safe, 'labos resume {self.id}' continues"
                    ) from exc
            if self.campaign.workflow.park is not None:
                md = {"campaign_id": self.id, "campaign": self.campaign.name, "experiment_id": experiment_id}
                self._park(self.campaign.workflow.park, lane, claims, f"{experiment_id}-a", md, experiment_id)
        finally:
            self._aborts.pop(lane.index, None)
            self._claims.pop(experiment_id, None)
            claims.release()  # after the park: its instruments stay held until its samples are safe
        return self._end(experiment_id, attempt, failure, readings, claims)

    def revoke(self, experiment_id: str, resource: str, why: str) -> None:
        """Stop the instrument ``resource`` if it acts for ``experiment_id`` (an operator disabled it with ``--abort``).

        The attempt then fails as an instrument fault that gives ``why``, and is retried
        (on another instrument of its pool, if it has one; the disabled one is not granted).
        """
        claims = self._claims.get(experiment_id)
        if claims is None:  # the attempt has ended meanwhile
            return
        for name, dev in self.lab.devices.items():
            if self.identity(name) != resource:
                continue
            claims.revoked = (name, why)  # its next step fails, if this one is not stopped
            if dev.busy:
                with contextlib.suppress(StoreError):
                    payload = {"instrument": name, "why": why}
                    self.store.log_event(self.id, "instrument work aborted", payload, experiment_id)
                dev.stop(success=False)

    def abort_all(self, reason: str) -> None:
        """Abort every attempt running on this campaign's lanes (a lane waiting for an instrument stops waiting)."""
        for abort in list(self._aborts.values()):
            with contextlib.suppress(Exception):  # idle by now, or already ending
                abort(reason)

    def park_stranded(self) -> int:
        """Carry every sample of this campaign left outside the parking rack there (on resume); how many moved.

        A process that died, or a campaign halted because an instrument's state became
        unknown, leaves its samples where they were: in a furnace boat, on a stage. The
        furnace is then unusable for everyone (another campaign is not given it while it
        holds the sample: see :class:`~labos.lanes.Claims`). Resuming the campaign (for a
        halt: once the instrument is checked) parks them first, holding the robots, as a
        Bluesky run of its own (only if something is stranded: in a slot outside the rack,
        or in a gripper). A failed park is logged, as after an experiment.
        """
        park = self.campaign.workflow.park
        if park is None or not any(isinstance(d, RobotArm) for d in self.lab.devices.values()):
            return 0
        prefix = f"{self.id}-"
        self.prepare()
        lane = self._free.get()
        try:
            claims = Claims(
                self.leases,
                self.campaign.workflow,
                self.identity,
                self.id,
                f"{self.id}-resume",
                0,
                self.campaign.priority,
                on_wait=lambda what: self._waiting(None, what),
                occupancy=self._occupancy,
            )
            md = {
                "campaign_id": self.id,
                "campaign": self.campaign.name,
                "purpose": "park what a resume found stranded",
            }
            try:
                return self._park(park, lane, claims, prefix, md)
            finally:
                claims.release()
        finally:
            self._free.put(lane)

    def _occupancy(self) -> dict[str, str | None]:
        """Every robot's slot -> sample map, and ``<robot>/gripper`` -> what it holds (asks the drivers)."""
        out: dict[str, str | None] = {}
        for dev in self.lab.devices.values():
            if isinstance(dev, RobotArm):
                out.update(dev.driver.occupancy())
                out[f"{dev.name}/{GRIPPER}"] = dev.driver.holding()
        return out

    def _waiting(self, experiment_id: str | None, wants: list[str]) -> None:
        """Log that a lane waits for instruments (once per step that has to)."""
        with contextlib.suppress(StoreError):
            self.store.log_event(self.id, "waiting for instruments", {"instruments": wants}, experiment_id)

    def _end(
        self, experiment_id: str, attempt: int, failure: Failure | None, run: RunReadings, claims: Claims
    ) -> dict[str, Any]:
        run_uid = run.start_doc["uid"] if run.start_doc else None
        inst_time = sum(float(r.get(f"{name}_duration", 0.0)) for name, rows in run.readings.items() for r in rows)
        if failure is None and run_uid is not None and run.stop_doc is not None:  # kept for its analysis
            with self._made_lock:
                self._made[run_uid] = run
            self.last = run
        retries = self.campaign.workflow.retries
        kwargs: dict[str, Any] = {
            "run_uid": run_uid,
            "instrument_time_s": inst_time,
            "instruments": list(claims.used),
        }
        if failure is None:
            self.store.end_attempt(experiment_id, attempt, target=State.MEASURED, **kwargs)
            target = State.MEASURED
        elif failure.cause == Cause.INTERRUPTED:
            target = State.INTERRUPTED
            self.store.end_attempt(
                experiment_id, attempt, target=target, error=failure.reason, cause=failure.cause, **kwargs
            )
        elif failure.transient and attempt <= retries:
            target = State.QUEUED
            delay = self.campaign.workflow.retry_backoff_s * 2.0 ** (attempt - 1)
            self.store.end_attempt(
                experiment_id,
                attempt,
                target=target,
                error=failure.reason,
                cause=failure.cause,
                retry_at=time.time() + delay,
                **kwargs,
            )
        else:
            target = State.FAILED
            reason = failure.reason + (f" (after {attempt} attempts)" if attempt > 1 else "")
            self.store.end_attempt(
                experiment_id,
                attempt,
                target=target,
                error=reason,
                cause=failure.cause,
                traceback=failure.traceback,
                **kwargs,
            )
        out = {"attempt": attempt, "state": target.value, "run_uid": run_uid}
        out |= {"error": failure.reason, "cause": failure.cause.value} if failure else {"error": None, "cause": None}
        if failure is not None and failure.cause == Cause.SOFTWARE:
            raise SoftwareError(
                f"experiment {experiment_id} hit a software error, not an instrument fault: {failure.reason}. "
                "The campaign stops; the traceback is stored with the experiment "
                f"(labos show {self.id} --data-dir {self.data_dir})"
            )
        return out

    def _park(
        self,
        park: str,
        lane: Lane,
        claims: Claims,
        only: str,
        md: dict[str, Any],
        experiment_id: str | None = None,
    ) -> int:
        """Carry the stranded samples whose ids start with ``only`` to ``park`` (:func:`park_plan`); how many moved.

        Logged, never raised (a store failure is). ``only`` is one experiment's prefix
        after an attempt, the campaign's on resume (:meth:`park_stranded`). Runs after
        every experiment, failed or not, so that a sample stranded by a fault (in a furnace
        boat, on the stage, in a gripper) does not block the next one. Only the samples of
        this experiment are moved (other lanes' samples are where their experiments put
        them), with the robots held for the purpose. The recovery is a Bluesky run of its
        own (only when something is stranded), through the arms' own interlocks. A failed
        park is logged: the next experiment meets the problem and fails cleanly.
        """
        robots = [d for d in self.lab.devices.values() if isinstance(d, RobotArm)]
        moved: list[dict[str, str]] = []
        try:
            claims.acquire([Hold((r.name,), -1, -1) for r in robots])
            lane.RE(park_plan(robots, park, md, moved, only=only))
        except Exception as exc:
            root = root_cause(exc)
            if isinstance(root, StoreError):
                raise root from exc
            self.store.log_event(self.id, "park failed", {"error": classify(exc).reason}, experiment_id)
        for m in moved:
            self.store.log_event(self.id, "parked", m, experiment_id)
        return len(moved)
