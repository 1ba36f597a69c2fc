"""Running one attempt of an experiment as a Bluesky run, ending it in the store, and clearing up after it.

:class:`AttemptRunner` is the part of :class:`~labos.session.CampaignSession` that drives
the RunEngine: the attempt is recorded ``running`` before its plan starts and ends
``measured``, back in the queue (a transient fault with retries left) or ``failed`` with
its cause; then the recovery plan parks stranded samples.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from labos import control
from labos.core.campaign import Campaign
from labos.core.errors import InstrumentStateUnknown, StoreError
from labos.core.lifecycle import Cause, State
from labos.data.documents import RunReadings
from labos.data.runs import RunCatalog
from labos.data.store import Store
from labos.devices.lab import Lab
from labos.devices.robot import RobotArm
from labos.failures import Failure, LabHalted, SoftwareError, classify, root_cause
from labos.plans.experiment import experiment_plan, resolve_steps
from labos.plans.park import park_plan


class AttemptRunner:
    """Attempts on the RunEngine (mixed into :class:`~labos.session.CampaignSession`)."""

    campaign: Campaign
    id: str
    data_dir: Path
    store: Store
    lab: Lab | None
    consumers: dict[int, dict[str, str]]
    RE: RunEngine
    _run: RunReadings

    @property
    def catalog(self) -> RunCatalog:
        """The campaign's run catalog (the session opens it on first use)."""
        raise NotImplementedError

    def open_catalog(self) -> None:
        """Start opening the run catalog; runs are journaled until it is open (see the session)."""
        raise NotImplementedError

    def settle(self) -> None:
        """Wait until the run catalog's thread has imported the array libraries (see the session)."""
        raise NotImplementedError

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
        assert self.lab is not None
        record = self.store.experiment(experiment_id)
        self.open_catalog()  # before the attempt is recorded: every document is written (journaled until tiled is open)
        self.settle()  # the instruments' simulators compute with scipy too
        attempt = self.store.start_attempt(experiment_id)
        steps = resolve_steps(self.campaign.workflow.steps, record.params, self.consumers)
        md = {
            "campaign_id": self.id,
            "campaign": self.campaign.name,
            "experiment_id": experiment_id,
            "seq": record.seq,
            "attempt": attempt,
            "parameters": dict(record.params),
            "planner": record.planner,
            "planner_options": dict(self.campaign.planner.options),
        }
        sample_id = f"{experiment_id}-a{attempt}"
        self._run.reset()
        failure: Failure | None = None
        try:
            with control.abortable(lambda reason: self.RE.abort(reason)):
                self.RE(experiment_plan(self.lab.devices, steps, sample_id, md))
        except KeyboardInterrupt:
            self._end(experiment_id, attempt, Failure("aborted by the user", Cause.INTERRUPTED, False))
            raise
        except RunEngineInterrupted as exc:  # RE.abort() or RE.pause() from another thread (an operator's stop)
            if self.RE.state == "paused":  # nobody resumes it from here: close the run, instruments at rest
                self.RE.abort("the campaign stopped while its RunEngine was paused")
            self._end(experiment_id, attempt, Failure("aborted on the RunEngine", Cause.INTERRUPTED, False))
            raise KeyboardInterrupt(f"experiment {experiment_id}: the RunEngine was aborted") from exc
        except Exception as exc:  # sorted into causes; a store failure or software error is re-raised
            root = root_cause(exc)
            if isinstance(root, StoreError):  # the record cannot be written: stop; the experiment reruns on resume
                with contextlib.suppress(StoreError):  # a store that cannot write this either: recovery will
                    self._end(experiment_id, attempt, Failure(str(root), Cause.INTERRUPTED, False))
                raise root from exc
            failure = classify(exc)
            if isinstance(root, InstrumentStateUnknown):  # no recovery moves into an instrument that may be acting
                self._end(experiment_id, attempt, failure, self._run_summary())
                raise LabHalted(
                    f"experiment {experiment_id}: {root}. The campaign stops; nothing was moved. "
                    f"Once the instrument is checked and safe, 'labos resume {self.id}' continues"
                ) from exc
        run = self._run_summary()
        if self.campaign.workflow.park is not None:
            self._park(experiment_id, self.campaign.workflow.park)
        return self._end(experiment_id, attempt, failure, run)

    def _run_summary(self) -> tuple[str | None, float]:
        """The uid of the run just made and its instrument time."""
        run_uid = self._run.start_doc["uid"] if self._run.start_doc else None
        readings = self._run.readings
        inst_time = sum(float(r.get(f"{name}_duration", 0.0)) for name, rows in readings.items() for r in rows)
        return run_uid, inst_time

    def _end(
        self, experiment_id: str, attempt: int, failure: Failure | None, run: tuple[str | None, float] | None = None
    ) -> dict[str, Any]:
        run_uid, inst_time = run if run is not None else self._run_summary()
        retries = self.campaign.workflow.retries
        kwargs: dict[str, Any] = {"run_uid": run_uid, "instrument_time_s": inst_time}
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

    def _park(self, experiment_id: str, park: str) -> None:
        """Clear the robots' work slots and grippers into ``park`` with :func:`park_plan`; logged, never raised.

        Runs after every experiment, failed or not, so that a sample stranded by a fault
        (in a furnace boat, on the stage, in a gripper) does not block the next one. The
        recovery is a Bluesky run of its own (only when something is stranded), through the
        arms' own interlocks. A failed park is logged: the next experiment meets the
        problem and fails cleanly.
        """
        assert self.lab is not None
        robots = [d for d in self.lab.devices.values() if isinstance(d, RobotArm)]
        moved: list[dict[str, str]] = []
        md = {"campaign_id": self.id, "campaign": self.campaign.name, "experiment_id": experiment_id}
        try:
            self.RE(park_plan(robots, park, md, moved))
        except Exception as exc:
            root = root_cause(exc)
            if isinstance(root, StoreError):
                raise root from exc
            self.store.log_event(self.id, "park failed", {"error": classify(exc).reason}, experiment_id)
        for m in moved:
            self.store.log_event(self.id, "parked", m, experiment_id)
