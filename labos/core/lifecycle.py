"""The experiment lifecycle: the states an experiment moves through, and which moves are legal.

::

    proposed ──► awaiting_approval ──► approved ──► queued ──► running ──► measured ──► completed
       │                │                  │          ▲  │        │  │                   │
       │                ▼                  │          │  │        │  └──► failed ◄───────┘ (analysis)
       │            rejected               │          │  │        │          ▲
       └──────────────► queued             │          │  │        ▼          │
                                           │          │  │   interrupted ────┘ (policy ``fail``)
    any non-final state ──► cancelled      │          │  │        │
                                           │          └──┴────────┘ (a retry, or policy ``rerun``)

Every move is written to the store *before* the action it announces (write-ahead): an
experiment is ``running`` before its plan starts, ``measured`` once its Bluesky run has
closed and before the analysis, and so on. A process killed at any moment therefore
leaves each experiment in a state that says exactly what is known about it: a
``running`` one whose process is gone is ``interrupted`` (its run may have produced
anything); a ``measured`` one has whole raw data and only needs analysing.

The module is pure: the store (:mod:`labos.data.store`) enforces it in the same
transaction that writes the move.
"""

from __future__ import annotations

from enum import StrEnum

from labos.core.errors import LabosError


class State(StrEnum):
    """Where an experiment is in its life."""

    PROPOSED = "proposed"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    QUEUED = "queued"
    RUNNING = "running"
    MEASURED = "measured"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PROPOSED: frozenset({State.AWAITING_APPROVAL, State.QUEUED, State.CANCELLED}),
    State.AWAITING_APPROVAL: frozenset({State.APPROVED, State.REJECTED, State.CANCELLED}),
    State.APPROVED: frozenset({State.QUEUED, State.CANCELLED}),
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED}),
    # a failed attempt that will be retried goes back to the queue
    State.RUNNING: frozenset({State.MEASURED, State.FAILED, State.QUEUED, State.INTERRUPTED}),
    State.MEASURED: frozenset({State.COMPLETED, State.FAILED, State.INTERRUPTED}),
    State.INTERRUPTED: frozenset({State.QUEUED, State.FAILED, State.CANCELLED}),
    State.COMPLETED: frozenset(),
    State.FAILED: frozenset(),
    State.REJECTED: frozenset(),
    State.CANCELLED: frozenset(),
}

FINAL: frozenset[State] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
"""States an experiment never leaves."""

OUTCOMES: frozenset[State] = frozenset({State.COMPLETED, State.FAILED})
"""Final states whose outcome the planner is told (``rejected`` and ``cancelled`` were never run)."""

PENDING: frozenset[State] = frozenset(
    {State.PROPOSED, State.AWAITING_APPROVAL, State.APPROVED, State.QUEUED, State.RUNNING, State.MEASURED}
)
"""Proposed and not yet resolved: the planner must not propose these points again."""


class Cause(StrEnum):
    """Why an attempt or an experiment failed."""

    INSTRUMENT = "instrument"
    """A device fault (jam, disconnect, beam dump, timeout): the instrument said no."""
    SAFETY = "safety"
    """A limit or interlock refused the action before anything moved."""
    ANALYSIS = "analysis"
    """The raw data could not be turned into objective values."""
    INTERRUPTED = "interrupted"
    """The process running the experiment died or was aborted."""
    SOFTWARE = "software"
    """A bug in labos, a planner or a driver: never told to the planner as an infeasible region."""


class IllegalTransition(LabosError, RuntimeError):
    """An experiment was asked to move to a state it cannot reach from where it is."""


def check_transition(experiment_id: str, current: str, target: str) -> State:
    """The target state, if ``current -> target`` is legal.

    Raises
    ------
    IllegalTransition
        If either state is unknown or the move is not allowed.
    """
    try:
        cur, nxt = State(current), State(target)
    except ValueError as exc:
        raise IllegalTransition(f"experiment {experiment_id}: unknown state ({exc})") from None
    if nxt not in TRANSITIONS[cur]:
        allowed = ", ".join(sorted(TRANSITIONS[cur])) or "none: it is final"
        raise IllegalTransition(f"experiment {experiment_id} cannot go from {cur} to {nxt} (allowed: {allowed})")
    return nxt
