"""One campaign's working parts: planner, instruments, RunEngine and store.

:class:`CampaignSession` offers the steps of the closed loop — propose, execute,
analyse, record, tell — as plain methods. ``flows/`` wires them into a Prefect flow;
this module imports without Prefect.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bluesky import RunEngine

from labos.analysis.registry import analyse
from labos.checks import lab_problems, open_lab, parameter_consumers, static_problems
from labos.core.campaign import Campaign
from labos.core.errors import AnalysisError, DeviceFault, LabosError, OutOfBoundsError, SpecError
from labos.core.pareto import pareto_front
from labos.core.results import Observation, Proposal
from labos.core.space import ParamValue
from labos.data.store import Store
from labos.data.writer import RunCapture, StoreWriter
from labos.devices.lab import Lab
from labos.devices.robot import RobotArm
from labos.planners.base import Planner
from labos.planners.registry import create_planner
from labos.plans.experiment import experiment_plan, resolve_steps


@dataclass(frozen=True)
class Execution:
    """What running one experiment's plan produced."""

    proposal: Proposal
    ok: bool
    run_uid: str | None
    readings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str | None = None
    transient: bool = False
    instrument_time_s: float = 0.0


class TransientExperimentError(LabosError, RuntimeError):
    """A transient instrument fault: running the same experiment again may succeed."""


def failure_reason(exc: BaseException) -> tuple[str, bool]:
    """A readable reason for ``exc`` and whether it is transient.

    Unwraps ophyd/bluesky ``FailedStatus`` to the device's own exception.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DeviceFault):
            return str(cur), cur.transient
        if isinstance(cur, LabosError):
            return str(cur), False
        status = cur.args[0] if cur.args else None
        inner = getattr(status, "exception", None)
        if callable(inner):
            try:
                got = inner(timeout=0)
            except Exception:  # noqa: BLE001 - a status may refuse; fall back to the chain
                got = None
            if isinstance(got, BaseException):
                cur = got
                continue
        cur = cur.__cause__ or cur.__context__
    return f"{type(exc).__name__}: {exc}", False


def new_campaign_id(name: str) -> str:
    """``name-YYYYmmddTHHMMSS-xxxx``: sortable and unique."""
    return f"{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"


class CampaignSession:
    """Everything one running campaign needs, opened and closed together.

    Parameters
    ----------
    campaign
        The validated campaign.
    data_dir
        Where the store lives (``campaign.data_dir`` unless overridden).
    source
        The campaign file, for provenance.

    Raises
    ------
    SpecError
        If the campaign cannot run (see :func:`labos.checks.check_campaign`).
    """

    def __init__(self, campaign: Campaign, data_dir: str | Path | None = None, source: str | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else campaign.data_dir
        problems = static_problems(campaign)
        lab, lab_errors = open_lab(campaign, self.data_dir)  # built once: checked, then used
        problems.extend(lab_errors)
        if lab is not None:
            problems.extend(lab_problems(campaign, lab))
        if problems:
            if lab is not None:
                lab.close()
            raise SpecError(problems, source)
        assert lab is not None  # no problems means the lab was built
        self.campaign = campaign
        self.id = new_campaign_id(campaign.name)
        self.lab: Lab | None = lab
        try:
            self.store = Store(self.data_dir)
        except BaseException:
            lab.close()
            raise
        try:
            self.planner: Planner = create_planner(campaign.planner, campaign.space, campaign.objectives, campaign.seed)
            self.consumers, _ = parameter_consumers(campaign, lab)
            self.store.create_campaign(self.id, campaign.name, campaign.as_json(), source)
        except BaseException:
            self._close_resources()
            raise
        self.RE = RunEngine({}, context_managers=[])
        self.RE.subscribe(StoreWriter(self.store, self.id))
        self._capture = RunCapture()
        self.RE.subscribe(self._capture)
        self.observations: list[Observation] = []
        self.proposed = 0
        self.started = time.monotonic()
        self._closed = False

    # ------------------------------------------------------------------ loop
    @property
    def remaining(self) -> int:
        """Experiments left in the budget."""
        return self.campaign.budget.max_experiments - self.proposed

    def propose(self, n: int, pending: Sequence[Mapping[str, ParamValue]] = ()) -> list[Proposal]:
        """Ask the planner for up to ``n`` experiments and record them.

        Raises
        ------
        OutOfBoundsError
            If the planner proposes a point outside the space (nothing is recorded).
        """
        n = min(n, self.remaining)
        if n <= 0:
            return []
        points = self.planner.ask(n, pending=pending)
        for p in points:  # the safety gate does not trust the planner
            problems = self.campaign.space.problems(p)
            if problems:
                raise OutOfBoundsError(f"planner {self.campaign.planner.name!r} proposed {p}: {'; '.join(problems)}")
        out = []
        for p in points:
            self.proposed += 1
            eid = f"{self.id}-{self.proposed:04d}"
            prop = Proposal(experiment_id=eid, seq=self.proposed, params=p, planner=self.campaign.planner.name)
            self.store.add_proposal(self.id, eid, prop.seq, prop.planner, p)
            out.append(prop)
        return out

    def execute(self, proposal: Proposal) -> Execution:
        """Run one experiment as one Bluesky run; instrument faults become a failed :class:`Execution`."""
        assert self.lab is not None
        attempt = self.store.start_attempt(self.id, proposal.experiment_id)
        steps = resolve_steps(self.campaign.workflow.steps, proposal.params, self.consumers)
        md = {
            "campaign_id": self.id,
            "campaign": self.campaign.name,
            "experiment_id": proposal.experiment_id,
            "seq": proposal.seq,
            "attempt": attempt,
            "parameters": dict(proposal.params),
            "planner": proposal.planner,
            "planner_options": dict(self.campaign.planner.options),
        }
        sample_id = f"{proposal.experiment_id}-a{attempt}"
        self._capture.reset()
        error: str | None = None
        transient = False
        try:
            self.RE(experiment_plan(self.lab.devices, steps, sample_id, md))
        except Exception as exc:  # noqa: BLE001 - instrument faults, limit violations: a failed experiment, not a crash
            error, transient = failure_reason(exc)
        if self.campaign.workflow.park is not None:
            self._park(proposal.experiment_id, self.campaign.workflow.park)
        run_uid = self._capture.start["uid"] if self._capture.start else None
        if run_uid is not None:
            self.store.add_run_uid(proposal.experiment_id, run_uid)
        readings = {k: list(v) for k, v in self._capture.readings.items()}
        inst_time = sum(float(r.get(f"{name}_duration", 0.0)) for name, rows in readings.items() for r in rows)
        return Execution(proposal, error is None, run_uid, readings, error, transient, inst_time)

    def _park(self, experiment_id: str, park: str) -> None:
        """Clear the robots' work slots and grippers into ``park`` (logged); problems are logged, not raised.

        Runs after every experiment, failed or not, so that a sample stranded by a fault
        (in a furnace boat, on the stage, in a gripper) does not block the next one.
        """
        assert self.lab is not None
        station = park.split("/")[0] + "/"
        for name, dev in self.lab.devices.items():
            if not isinstance(dev, RobotArm):
                continue
            try:
                stranded = [s for slot, s in dev.driver.occupancy().items() if s and not slot.startswith(station)]
                held = dev.driver.holding()
                for sample in ([held] if held else []) + stranded:
                    for attempt in range(2):  # a transient fault (jam, timeout) gets one more try
                        try:
                            moved = dev.clear(sample, park)
                            break
                        except DeviceFault as exc:
                            if attempt or not exc.transient:
                                raise
                    if moved is not None:
                        here, slot = moved
                        self.store.log_event(
                            self.id, "parked", {"sample_id": sample, "from": here, "to": slot}, experiment_id
                        )
            except Exception as exc:  # noqa: BLE001 - the next experiment will meet the problem and fail cleanly
                reason, _ = failure_reason(exc)
                self.store.log_event(self.id, "park failed", {"robot": name, "error": reason}, experiment_id)

    def note_retry(self, execution: Execution, will_retry: bool) -> None:
        """Log a failed attempt in the decision log."""
        self.store.record_attempt_failure(
            self.id, execution.proposal.experiment_id, execution.error or "unknown", will_retry
        )

    def analyse(self, execution: Execution) -> Observation:
        """Turn an execution's raw readings into metrics and objective values."""
        params = dict(execution.proposal.params)
        if not execution.ok:
            return Observation(params=params, status="failed", error=execution.error)
        metrics: dict[str, float] = {}
        try:
            for step in self.campaign.workflow.steps:
                if step.action != "measure":
                    continue
                kind = self.campaign.workflow.instruments[step.instrument].kind
                metrics.update(analyse(kind, step.instrument, execution.readings.get(step.instrument, [])))
            objectives = {o.name: o.value(metrics) for o in self.campaign.objectives}
        except AnalysisError as exc:
            return Observation(params=params, metrics=metrics, status="failed", error=f"analysis: {exc}")
        plain = {k: v for k, v in metrics.items() if "." not in k}
        return Observation(params=params, metrics=plain, objectives=objectives)

    def record(self, execution: Execution, obs: Observation) -> None:
        """Store an experiment's outcome (one transaction)."""
        self.store.record_result(
            self.id,
            execution.proposal.experiment_id,
            status=obs.status,
            metrics=obs.metrics or None,
            objectives=obs.objectives or None,
            error=obs.error,
            instrument_time_s=execution.instrument_time_s,
        )
        self.observations.append(obs)

    def tell(self, observations: Sequence[Observation]) -> None:
        """Pass outcomes to the planner and log that it learned them."""
        self.planner.tell(observations)
        self.store.log_event(self.id, "told", {"n": len(observations), "failed": sum(not o.ok for o in observations)})

    # --------------------------------------------------------------- summary
    def best(self) -> Observation | None:
        """The best successful observation by the primary objective."""
        o = self.campaign.primary
        best: Observation | None = None
        for obs in self.observations:
            if obs.ok and (best is None or o.better(obs.objectives[o.name], best.objectives[o.name])):
                best = obs
        return best

    def pareto(self) -> list[Observation]:
        """The non-dominated successful observations over every objective."""
        return pareto_front(self.observations, self.campaign.objectives)

    def consecutive_failures(self) -> int:
        """Failed experiments since the last success."""
        n = 0
        for obs in reversed(self.observations):
            if obs.ok:
                break
            n += 1
        return n

    # ------------------------------------------------------------- lifecycle
    def finish(self, status: str, message: str | None = None) -> None:
        """Mark the campaign finished and release instruments (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.store.finish_campaign(self.id, status, message)
        finally:
            self._close_resources()

    def _close_resources(self) -> None:
        if self.lab is not None:
            self.lab.close()
        self.store.close()
