"""Why an attempt failed: sorting an exception into a cause, and the error that stops a campaign on a bug."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from labos.core.errors import AnalysisError, DeviceFault, LabosError, OutOfBoundsError
from labos.core.lifecycle import Cause


class SoftwareError(LabosError, RuntimeError):
    """A bug (in labos, a planner, a driver or an analysis) stopped the campaign; the traceback is stored."""


class LabHalted(LabosError, RuntimeError):
    """An instrument's state is unknown: the campaign stops without moving anything (ends ``failed``)."""


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed: a readable reason, its cause, whether a retry may help, and the traceback."""

    reason: str
    cause: Cause
    transient: bool
    traceback: str | None = None


def root_cause(exc: BaseException) -> BaseException:
    """The exception behind ophyd/bluesky wrappers (``FailedStatus``) and chains.

    Stops at the first labos error; otherwise returns the innermost exception found.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    last = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        last = cur
        if isinstance(cur, LabosError):
            return cur
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
    return last


def classify(exc: BaseException) -> Failure:
    """Sort a failed attempt's exception into a :class:`~labos.core.lifecycle.Cause`.

    Device faults are instrument failures (transient if the device says so); a limit or
    interlock refusal is a safety failure; a status that timed out is an instrument
    failure that is *not* transient (the action may still be running on the
    instrument, so it is not blindly repeated); anything else is a software error.
    """
    root = root_cause(exc)
    if isinstance(root, DeviceFault):
        return Failure(str(root), Cause.INSTRUMENT, root.transient)
    if isinstance(root, OutOfBoundsError):
        return Failure(str(root), Cause.SAFETY, False)
    if isinstance(root, AnalysisError):
        return Failure(f"analysis: {root}", Cause.ANALYSIS, False)
    if isinstance(root, TimeoutError) or type(root).__name__ in {"StatusTimeoutError", "WaitTimeoutError"}:
        return Failure(f"timed out: {root or type(root).__name__}", Cause.INSTRUMENT, False)
    tb = "".join(traceback.format_exception(root))
    return Failure(f"{type(root).__name__}: {root}", Cause.SOFTWARE, False, tb)
