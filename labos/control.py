"""Human control of running campaigns: ask them to stop between experiments.

Two ways in, one meaning: :func:`request_stop` asks the campaigns running in this
process (what a Ctrl-C or SIGTERM handler calls: a signal handler must not write to the
store), and :meth:`labos.data.store.Store.request_stop` asks a campaign through its
store, from any process. The loop checks both before every step. A stop never
interrupts an experiment half-way: the running one finishes and is recorded, then the
campaign ends with status ``stopped``, its queue kept for ``labos resume``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

_lock = threading.RLock()  # re-entrant: a signal handler may run while the main thread holds it
_all: list[str] = []
_by_campaign: dict[str, str] = {}
_aborts: list[Callable[[str], None]] = []


def request_stop(reason: str, campaign_id: str | None = None) -> bool:
    """Ask one campaign (or, with ``campaign_id=None``, every campaign) in this process to stop.

    Returns whether this was the first request for it (the first reason wins).
    """
    with _lock:
        if campaign_id is None:
            first = not _all
            if first:
                _all.append(reason)
            return first
        first = campaign_id not in _by_campaign and not _all
        _by_campaign.setdefault(campaign_id, reason)
        return first


def stop_reason(campaign_id: str) -> str | None:
    """Why ``campaign_id`` was asked to stop in this process, or ``None``."""
    with _lock:
        return _all[0] if _all else _by_campaign.get(campaign_id)


def clear() -> None:
    """Forget every stop request of this process (a new command, or a test)."""
    with _lock:
        _all.clear()
        _by_campaign.clear()


@contextlib.contextmanager
def abortable(abort: Callable[[str], None]) -> Iterator[None]:
    """While an experiment runs, :func:`abort_running` calls ``abort(reason)`` (the RunEngine's ``abort``)."""
    with _lock:
        _aborts.append(abort)
    try:
        yield
    finally:
        with _lock:
            _aborts.remove(abort)


def abort_running(reason: str) -> bool:
    """Abort the experiments running in this process now: what a second Ctrl-C does.

    Each is aborted through its RunEngine (``RE.abort``: the instruments stopped, the
    run closed with ``exit_status="abort"``, the attempt recorded ``interrupted``), not
    by an exception thrown into whatever the process was doing. Returns ``False`` when
    none could be aborted that way (none running, or its RunEngine not in a state to
    abort): the caller then raises ``KeyboardInterrupt`` instead.
    """
    with _lock:
        aborts = list(_aborts)
    done = False
    for abort in aborts:
        try:
            abort(reason)
            done = True
        except Exception:  # noqa: BLE001 - not abortable now (idle, panicked): the caller falls back
            pass
    return done


def on_signal(signum: int) -> bool:
    """What SIGINT and SIGTERM do to the campaigns of this process; whether this was the first signal.

    The first asks them to stop between experiments; a second aborts the running
    experiment through its RunEngine (:func:`abort_running`: instruments stopped, run
    closed), and only when none can be aborted that way raises ``KeyboardInterrupt``
    (an exception thrown into the process lands wherever it was, a tiled write say).
    """
    name = signal.Signals(signum).name
    if request_stop(f"interrupted by the user ({name})"):
        return True
    if not abort_running(f"aborted by the user (a second {name})"):
        raise KeyboardInterrupt
    return False
