"""The closed loop as a Prefect flow: propose -> run -> analyse -> record -> tell.

Thin by design: every step is a method of :class:`labos.session.CampaignSession`.
Import :mod:`flows.settings` and call ``configure_prefect`` before importing this
module, so Prefect runs in ephemeral mode with its home inside the labos data dir.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from labos.control import StopRequest
from labos.core.campaign import Campaign
from labos.core.results import Observation, Proposal
from labos.data.report import convergence_plot
from labos.session import CampaignSession, Execution, TransientExperimentError


@dataclass(frozen=True)
class Progress:
    """Reported after every experiment."""

    done: int
    total: int
    best: float | None
    last: Observation
    elapsed_s: float


@dataclass(frozen=True)
class CampaignSummary:
    """What a finished campaign returns."""

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
    store: Path
    plot: Path | None
    elapsed_s: float
    pareto: tuple[Observation, ...] = ()
    """With several objectives: the non-dominated experiments (see :func:`labos.core.pareto.pareto_front`)."""


@task(name="propose", cache_policy=NO_CACHE)
def propose(session: CampaignSession, n: int) -> list[Proposal]:
    """Ask the planner for the next experiments."""
    return session.propose(n)


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only transient instrument faults."""
    try:
        state.result()
    except TransientExperimentError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


@task(name="run-experiment", cache_policy=NO_CACHE, retry_condition_fn=_transient)
def run_experiment(session: CampaignSession, proposal: Proposal) -> Execution:
    """Run one experiment's Bluesky plan; transient faults raise so Prefect retries."""
    execution = session.execute(proposal)
    if not execution.ok:
        session.note_retry(execution, will_retry=execution.transient)
        if execution.transient:
            raise TransientExperimentError(execution.error or "transient fault")
    return execution


@task(name="analyse", cache_policy=NO_CACHE)
def analyse(session: CampaignSession, execution: Execution) -> Observation:
    """Derive metrics and objectives from the raw readings."""
    return session.analyse(execution)


@task(name="record", cache_policy=NO_CACHE)
def record(session: CampaignSession, execution: Execution, obs: Observation) -> None:
    """Store the outcome."""
    session.record(execution, obs)


@task(name="tell", cache_policy=NO_CACHE)
def tell(session: CampaignSession, observations: list[Observation]) -> None:
    """Teach the planner."""
    session.tell(observations)


@flow(name="labos-campaign", validate_parameters=False, log_prints=False)
def campaign_flow(
    spec: dict[str, Any],
    data_dir: str | None = None,
    source: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    plot: bool = True,
    stop: StopRequest | None = None,
) -> CampaignSummary:
    """Run the campaign ``spec`` until its budget is spent (or too many failures in a row).

    ``spec`` is the campaign as JSON (``Campaign.as_json()``), so that Prefect shows and
    stores it as the flow run's parameters. ``stop`` lets a person (or a signal handler)
    end the campaign between experiments.
    """
    t0 = time.monotonic()
    campaign = Campaign.model_validate(spec)
    session = CampaignSession(campaign, data_dir, source)
    status, message = "completed", None
    runner = run_experiment.with_options(retries=campaign.workflow.retries, retry_delay_seconds=0)
    try:
        while session.remaining > 0 and not (stop and stop.is_set()):
            proposals = propose(session, campaign.budget.batch_size)
            batch: list[Observation] = []
            for prop in proposals:
                if stop is not None and stop.is_set():
                    break  # proposed but never started: recorded as such when the campaign finishes
                try:
                    execution = runner(session, prop)
                except TransientExperimentError as exc:
                    execution = Execution(prop, False, None, error=f"{exc} (after {campaign.workflow.retries} retries)")
                obs = analyse(session, execution)
                record(session, execution, obs)
                batch.append(obs)
                if progress is not None:
                    best = session.best()
                    value = best.objectives[campaign.primary.name] if best else None
                    progress(
                        Progress(
                            len(session.observations),
                            campaign.budget.max_experiments,
                            value,
                            obs,
                            time.monotonic() - t0,
                        )
                    )
            if batch:
                tell(session, batch)
            if session.consecutive_failures() >= campaign.budget.max_consecutive_failures:
                status = "stopped"
                message = (
                    f"{session.consecutive_failures()} experiments failed in a row; last error: "
                    f"{session.observations[-1].error}"
                )
                break
        if stop is not None and stop.is_set():
            status, message = "stopped", stop.reason
    except KeyboardInterrupt:
        status, message = "stopped", "aborted by the user during an experiment"
        raise
    except BaseException as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        session.finish(status, message)
    return summarise(session, status, message, time.monotonic() - t0, plot)


def summarise(
    session: CampaignSession, status: str, message: str | None, elapsed: float, plot: bool
) -> CampaignSummary:
    """Build the summary (and the convergence plot) from the store's record."""
    from labos.data.store import Store

    campaign = session.campaign
    with Store(session.store.path) as store:
        records = store.experiments(session.id)
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
        n_ok=sum(r.status == "ok" for r in records),
        n_failed=sum(r.status == "failed" for r in records),
        objective=campaign.primary.name,
        direction=campaign.primary.direction,
        best_value=best.objectives[campaign.primary.name] if best else None,
        best_params=dict(best.params) if best else None,
        best_metrics=dict(best.metrics) if best else None,
        store=session.store.path,
        plot=plot_path,
        elapsed_s=elapsed,
        pareto=tuple(session.pareto()) if len(campaign.objectives) > 1 else (),
    )
