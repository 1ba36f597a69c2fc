"""What a campaign does next, decided from its stored record alone.

:func:`decide` is a pure function of the campaign spec and its experiments as stored.
The Prefect flow (``flows/campaign.py``) calls it, does the step it names, and calls it
again: no loop state lives in Python objects, so a process that dies at any moment is
continued by another one that reads the same store (``labos resume``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from labos.core.campaign import Campaign
from labos.core.lifecycle import Cause, State
from labos.data.records import ExperimentRecord
from labos.data.store import outcome_told

StepKind = Literal["analyse", "queue", "run", "wait", "tell", "propose", "stop", "give_up", "done"]


@dataclass(frozen=True)
class Step:
    """The next thing a campaign does."""

    kind: StepKind
    experiment_id: str | None = None
    n: int = 0
    """``propose``: how many experiments to ask for."""
    delay_s: float = 0.0
    """``wait``: seconds until a retry is due."""
    message: str | None = None


def budget_used(records: Sequence[ExperimentRecord]) -> int:
    """Experiments that count against the budget.

    Not counted: experiments never run (cancelled, rejected) and experiments lost to a
    software error, whose outcome says nothing about the material.
    """
    skip = {State.CANCELLED, State.REJECTED}
    return sum(1 for r in records if State(r.status) not in skip and r.cause != Cause.SOFTWARE)


def consecutive_failures(records: Sequence[ExperimentRecord]) -> int:
    """Failed experiments (told to the planner) since the last completed one, in the order they ended."""
    ended = sorted((r for r in records if outcome_told(r)), key=lambda r: (r.finished or 0.0, r.seq))
    n = 0
    for r in reversed(ended):
        if r.status == State.COMPLETED:
            break
        n += 1
    return n


def decide(
    campaign: Campaign,
    records: Sequence[ExperimentRecord],
    stop_request: str | None,
    now: float,
    in_flight: Collection[str] = (),
) -> Step:
    """The next step of ``campaign`` given its ``records`` (in ``seq`` order) and the experiments ``in_flight``.

    ``in_flight`` are the experiments this process's lanes are running now (a ``running``
    experiment not among them was left by a process that died: recover first). The
    campaign keeps ``workflow.n_lanes`` experiments in flight. In order: analyse what was
    measured and no lane is analysing (a lane analyses the experiment it ran; this is for one
    measured by a process that died); stop if asked, once nothing is in flight (the queue
    is kept for a resume); queue proposals (approval comes here); run the oldest due
    experiment of the queue on a free lane; tell the planner every outcome it has not
    learned; stop after too many failures in a row; propose. With ``batch_size`` 1 the
    planner is asked for as many experiments as lanes are free, the ones in flight as
    pending (asynchronous); with a larger ``batch_size``, for a whole batch once the
    previous one is in and told (synchronous batches). Otherwise wait: for a retry, an
    approval, or a lane to finish.
    """
    flying = set(in_flight)
    by_state: dict[State, list[ExperimentRecord]] = {}
    for r in records:
        by_state.setdefault(State(r.status), []).append(r)
    strays = [r for r in by_state.get(State.RUNNING, []) if r.id not in flying] + by_state.get(State.INTERRUPTED, [])
    if strays:
        r = strays[0]
        return Step("stop", r.id, message=f"experiment {r.id} is {r.status}: recover the campaign first")
    measured = [r for r in by_state.get(State.MEASURED, []) if r.id not in flying]  # a lane analyses its own
    if measured:
        return Step("analyse", measured[0].id)
    if stop_request is not None:
        if flying:
            return Step("wait", delay_s=0.5, message=f"stopping once the running experiments end: {stop_request}")
        return Step("stop", message=stop_request)
    if State.PROPOSED in by_state:
        return Step("queue", by_state[State.PROPOSED][0].id)
    lanes = campaign.workflow.n_lanes
    free = lanes - len(flying)
    queued = [r for r in by_state.get(State.QUEUED, []) if r.id not in flying]
    due = [r for r in queued if r.retry_at is None or r.retry_at <= now]
    if due and free > 0:
        return Step("run", due[0].id)
    untold = [r for r in records if outcome_told(r) and not r.told]
    batches = campaign.budget.batch_size > 1
    if untold and not (batches and (flying or queued)):  # a synchronous batch is told whole
        return Step("tell")
    failures = consecutive_failures(records)
    if failures >= campaign.budget.max_consecutive_failures:
        if flying:
            return Step("wait", delay_s=0.5, message="giving up once the running experiments end")
        last = max((r for r in records if r.status == State.FAILED), key=lambda r: (r.finished or 0.0, r.seq))
        return Step("give_up", message=f"{failures} experiments failed in a row; last error: {last.error}")
    left = campaign.budget.max_experiments - budget_used(records)
    waiting = State.AWAITING_APPROVAL in by_state or State.APPROVED in by_state
    if left > 0:
        if batches:
            if not (flying or queued or waiting or untold):
                return Step("propose", n=min(campaign.budget.batch_size, left))
        elif free - len(queued) > 0:
            return Step("propose", n=min(free - len(queued), left))
    if queued and not due:
        first = min(queued, key=lambda r: r.retry_at or 0.0)
        delay = max((first.retry_at or now) - now, 0.0)
        return Step("wait", first.id, delay_s=delay)
    if waiting:
        r = (by_state.get(State.AWAITING_APPROVAL) or by_state[State.APPROVED])[0]
        return Step("wait", r.id, delay_s=1.0, message="waiting for approval")
    if flying:  # every lane busy (or nothing left to propose): wait for one to finish
        return Step("wait", delay_s=0.5, message="waiting for a lane to finish")
    return Step("done")
