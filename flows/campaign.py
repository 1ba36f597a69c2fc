"""The closed loop as a Prefect flow over a stored campaign: decide -> do -> decide ...

The flow's parameters and every task's inputs are ids and JSON: the flow asks the store
what to do next (:func:`labos.loop.decide`), runs that step as a task, and asks again.
A process-local :class:`~labos.session.CampaignSession` caches the planner and the
instruments; a process that has none for the campaign (a resume, or a worker on another
machine) opens one from the store.

Import :mod:`flows.settings` and call ``configure_prefect`` before importing this
module, so Prefect runs against the labos-owned API server with its home inside the
labos data dir.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectConcurrentFuture

from labos import control
from labos.core.campaign import Campaign
from labos.core.errors import LabosError, StoreError
from labos.core.lifecycle import State
from labos.core.results import Observation
from labos.data.report import convergence_plot
from labos.loop import Step
from labos.session import CampaignSession

_sessions: dict[str, CampaignSession] = {}
"""This process's open campaigns, by id."""


@dataclass(frozen=True)
class CampaignSummary:
    """What a finished (or stopped) campaign returns."""

    campaign_id: str
    name: str
    status: str
    message: str | None
    n_ok: int
    n_failed: int
    objective: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any] | None
    best_metrics: dict[str, float] | None
    store: str | Path
    """Where the store is: a path, or a database URL (its password left out)."""
    plot: Path | None
    elapsed_s: float
    """Wall-clock seconds this process spent running the campaign."""
    pareto: tuple[Observation, ...] = ()
    """With several objectives: the non-dominated experiments (see :func:`labos.core.pareto.pareto_front`)."""
    instrument_time_s: float = 0.0
    """Instrument time of every experiment, on the instruments' clock (simulated seconds in simulation)."""


def attach(session: CampaignSession) -> str:
    """Make an open session the one this process's tasks use for its campaign; its id."""
    _sessions[session.id] = session
    return session.id


def _id(step: Step) -> str:
    assert step.experiment_id is not None, step
    return step.experiment_id


def _session(campaign_id: str, data_dir: str) -> CampaignSession:
    session = _sessions.get(campaign_id)
    if session is None:
        session = _sessions[campaign_id] = CampaignSession.resume(data_dir, campaign_id)
    return session


@task(name="propose", cache_policy=NO_CACHE)
def propose(campaign_id: str, data_dir: str, n: int) -> list[str]:
    """Ask the planner for the next experiments; their ids."""
    return _session(campaign_id, data_dir).propose(n)


@task(name="run-experiment", cache_policy=NO_CACHE)
def run_experiment(campaign_id: str, data_dir: str, experiment_id: str) -> dict[str, Any]:
    """Run one attempt of a queued experiment on a lane, and analyse it there if it was measured.

    Retries are queued in the store, not here. The analysis is the experiment's own work:
    done on its lane, it runs beside the other lanes and the loop, in the same task run.
    """
    session = _session(campaign_id, data_dir)
    outcome = session.run(experiment_id)
    if outcome.get("state") == State.MEASURED.value:
        outcome["analysis"] = session.analyse(experiment_id)
    return outcome


@task(name="analyse", cache_policy=NO_CACHE)
def analyse(campaign_id: str, data_dir: str, experiment_id: str) -> dict[str, Any]:
    """Derive metrics and objectives from a measured experiment's stored data."""
    return _session(campaign_id, data_dir).analyse(experiment_id)


@task(name="tell", cache_policy=NO_CACHE)
def tell(campaign_id: str, data_dir: str) -> list[str]:
    """Teach the planner the outcomes it has not learned yet."""
    return _session(campaign_id, data_dir).tell()


def _graceful(signum: int, frame: Any) -> None:
    """Stop between experiments; a second signal aborts the running one (:func:`labos.control.on_signal`)."""
    control.on_signal(signum)


@contextlib.contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """While the flow runs, SIGTERM does what SIGINT does.

    Prefect's flow engine replaces SIGTERM's handler with one that crashes the flow run:
    ``systemctl stop`` or ``docker stop`` would abort the running experiment and leave
    its Bluesky run without a stop document. Here SIGTERM gets SIGINT's handler when
    that is a Python function (the CLI's: stop after the current experiment, abort on
    a second signal), else :func:`_graceful`. Only in the main thread, where signals
    are delivered.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigint = signal.getsignal(signal.SIGINT)
    handler = sigint if callable(sigint) and sigint is not signal.default_int_handler else _graceful
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@flow(name="labos-campaign", validate_parameters=False, log_prints=False)
def campaign_flow(campaign_id: str, data_dir: str, plot: bool = True) -> CampaignSummary:
    """Run the stored campaign ``campaign_id`` until its budget is spent, it is stopped, or it fails.

    A stop (``labos.control.request_stop`` in this process, or a stop request in the
    store) ends it between experiments with status ``stopped``, keeping the queue for
    a resume; so does ``max_consecutive_failures``, and so does SIGTERM (as SIGINT). A
    software error, or an instrument whose state became unknown, ends it ``failed``.
    """
    with _sigterm_as_sigint():
        return _campaign_loop(campaign_id, data_dir, plot)


def _campaign_loop(campaign_id: str, data_dir: str, plot: bool) -> CampaignSummary:
    t0 = time.monotonic()
    session = _session(campaign_id, data_dir)
    status, message = "completed", None
    lanes: dict[str, PrefectConcurrentFuture[dict[str, Any]]] = {}  # experiment id -> its attempt, running on a lane
    try:
        try:
            while True:
                _collect(lanes)
                step = session.next_step(control.stop_reason(campaign_id), in_flight=list(lanes))
                if step.kind == "analyse":
                    analyse(campaign_id, data_dir, _id(step))
                elif step.kind == "queue":  # a transition in the store: no task run of its own
                    session.queue(_id(step))
                elif step.kind == "run":  # on a lane of its own: the loop goes on to fill the others
                    future = run_experiment.submit(campaign_id, data_dir, _id(step))
                    assert isinstance(future, PrefectConcurrentFuture)  # the flow's thread-pool task runner
                    lanes[_id(step)] = future
                elif step.kind == "wait":  # decide again when a lane ends, or soon (a stop may arrive)
                    _first_done(lanes, min(step.delay_s, 0.5))
                elif step.kind == "tell":
                    tell(campaign_id, data_dir)
                elif step.kind == "propose":
                    propose(campaign_id, data_dir, step.n)
                else:
                    if step.kind in ("stop", "give_up"):
                        status, message = "stopped", step.message
                    break
        except BaseException as exc:
            _wind_down(session, lanes, abort=isinstance(exc, KeyboardInterrupt))
            raise
    except KeyboardInterrupt:
        status, message = "stopped", "aborted by the user during an experiment"
        raise
    except StoreError as exc:  # the record cannot be written: the CLI's store-problem exit
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    except LabosError as exc:  # a bug (SoftwareError), an instrument in an unknown state, a planner that cannot go on
        status, message = "failed", str(exc)
    except BaseException as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _sessions.pop(campaign_id, None)
        try:
            summary = summarise(session, status, message, time.monotonic() - t0, plot)
        finally:
            session.finish(status, message)
    return summary


def _collect(lanes: dict[str, PrefectConcurrentFuture[dict[str, Any]]]) -> None:
    """Take the attempts that ended off their lanes; an attempt's exception (a bug, a halt, an abort) is raised."""
    for eid, future in list(lanes.items()):
        if future.wrapped_future.done():
            del lanes[eid]
            future.result()


def _first_done(lanes: dict[str, PrefectConcurrentFuture[dict[str, Any]]], timeout: float) -> None:
    """Wait until one lane's attempt ends, or ``timeout`` seconds."""
    if not lanes:
        time.sleep(timeout)
        return
    futures.wait([f.wrapped_future for f in lanes.values()], timeout, return_when=futures.FIRST_COMPLETED)


def _wind_down(
    session: CampaignSession, lanes: dict[str, PrefectConcurrentFuture[dict[str, Any]]], abort: bool
) -> None:
    """The loop is ending on an exception: let the other lanes end (aborted, with ``abort``), their records whole.

    An attempt that ends meanwhile is recorded by its lane as usual; what it raises is
    not the campaign's reason to stop (the first exception is), so it is dropped here.
    """
    if abort:
        session.attempts.abort_all("the campaign is stopping")
    if lanes:
        futures.wait([f.wrapped_future for f in lanes.values()])
    for future in lanes.values():
        with contextlib.suppress(BaseException):
            future.result()
    lanes.clear()


def run_campaign(
    campaign: Campaign | dict[str, Any],
    data_dir: str | Path | None = None,
    source: str | None = None,
    plot: bool = True,
) -> CampaignSummary:
    """Record a new campaign and run it to the end (the Python API of ``labos run``)."""
    if not isinstance(campaign, Campaign):
        campaign = Campaign.model_validate(campaign)
    session = CampaignSession.create(campaign, data_dir, source)
    return campaign_flow(attach(session), str(session.data_dir), plot)


def resume_campaign(data_dir: str | Path, key: str, plot: bool = True) -> CampaignSummary:
    """Continue the stored campaign ``key`` (an id, or the latest of that name) (``labos resume``)."""
    session = CampaignSession.resume(data_dir, key)
    return campaign_flow(attach(session), str(session.data_dir), plot)


def summarise(
    session: CampaignSession, status: str, message: str | None, elapsed: float, plot: bool
) -> CampaignSummary:
    """Build the summary (and the convergence plot) from the store's record."""
    campaign = session.campaign
    records = session.records()
    best = session.best()
    plot_path = None
    if plot:
        plot_path = convergence_plot(
            records,
            campaign.primary,
            session.data_dir / "campaigns" / session.id / "convergence.png",
            f"{campaign.name} ({campaign.planner.name}) - {session.id}",
        )
    return CampaignSummary(
        campaign_id=session.id,
        name=campaign.name,
        status=status,
        message=message,
        n_ok=sum(r.status == State.COMPLETED for r in records),
        n_failed=sum(r.status == State.FAILED for r in records),
        objective=campaign.primary.name,
        direction=campaign.primary.direction,
        best_value=best.objectives[campaign.primary.name] if best else None,
        best_params=dict(best.params) if best else None,
        best_metrics=dict(best.metrics) if best else None,
        store=session.store.location,
        plot=plot_path,
        elapsed_s=elapsed,
        pareto=tuple(session.pareto()) if len(campaign.objectives) > 1 else (),
        instrument_time_s=sum(r.instrument_time_s or 0.0 for r in records),
    )
