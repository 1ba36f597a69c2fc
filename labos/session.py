"""One campaign's working parts in one process: planner, instruments, RunEngine, store and lock.

A :class:`CampaignSession` is opened on a campaign *record*: :meth:`CampaignSession.create`
writes a new one, :meth:`CampaignSession.resume` continues one whose process died or
stopped. Every step (queue, run, analyse, tell, propose) takes experiment ids, reads
what it needs from the store and writes its outcome back, so the session holds no loop
state of its own beyond caches it can rebuild: the planner (restored from the state
stored after every ``ask``/``tell``) and the instruments. ``flows/`` wires the steps
into a Prefect flow; this module imports without Prefect.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import threading
import time
import traceback
from collections.abc import Collection, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from bluesky import RunEngine

from labos.analysis.registry import analyse
from labos.attempts import AttemptRunner
from labos.checks import lab_problems, open_lab, parameter_consumers, static_problems
from labos.core.campaign import Campaign
from labos.core.errors import AnalysisError, OutOfBoundsError, RunStoreError, SpecError, StoreError
from labos.core.lifecycle import PENDING, Cause, State
from labos.core.pareto import pareto_front
from labos.core.results import Observation
from labos.core.settings import Settings
from labos.data.documents import RunReadings
from labos.data.lock import CampaignLock
from labos.data.records import ExperimentRecord
from labos.data.recovery import recover_campaign
from labos.data.reservations import Leases, Reservation
from labos.data.runs import RunCatalog, RunWriter, journal_dir
from labos.data.store import Store, open_store, outcome_told
from labos.data.tiled_app import import_array_libraries
from labos.devices.lab import Lab
from labos.failures import SoftwareError, classify
from labos.lanes import Lane
from labos.loop import Step, decide
from labos.planners.base import Planner
from labos.planners.registry import create_planner, get_planner_class

log = logging.getLogger("labos.session")


def new_campaign_id(name: str) -> str:
    """``name-YYYYmmddTHHMMSS-xxxx``: sortable and unique."""
    return f"{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"


def observation_of(record: ExperimentRecord) -> Observation:
    """What the planner is told of a finished experiment."""
    if record.status == State.COMPLETED:
        return Observation(params=record.params, objectives=record.objectives or {}, metrics=record.metrics or {})
    return Observation(params=record.params, status="failed", error=record.error)


class CampaignSession:
    """Everything one process needs to run a stored campaign's steps.

    Use :meth:`create` or :meth:`resume`; close with :meth:`finish` or :meth:`close`.
    The process owns the campaign through a lease in the store (:mod:`labos.data.reservations`,
    renewed by a heartbeat; on SQLite a kernel ``flock`` besides), so no other process,
    on this machine or another sharing the store, runs it meanwhile. Its experiments run
    on ``workflow.n_lanes`` lanes (:mod:`labos.lanes`), several at once: :meth:`run` may
    be called from as many threads.
    """

    def __init__(
        self, campaign: Campaign, campaign_id: str, data_dir: Path, store: Store, lab: Lab, leases: Leases | None = None
    ) -> None:
        self.campaign = campaign
        self.id = campaign_id
        self.data_dir = data_dir
        self.store = store
        self.lab: Lab | None = lab
        self.lock = CampaignLock(data_dir, campaign_id)
        self.leases = leases if leases is not None else Leases(store, Settings().lease_s)
        self.leases.on_revoked = self._revoked
        self.consumers, _ = parameter_consumers(campaign, lab.inputs)
        self.planner: Planner = create_planner(campaign.planner, campaign.space, campaign.objectives, campaign.seed)
        self.lanes = [Lane(i) for i in range(campaign.workflow.n_lanes)]
        identities = lab.context.identities
        self.attempts = AttemptRunner(
            campaign,
            campaign_id,
            data_dir,
            store,
            lab,
            self.consumers,
            self.leases,
            self.lanes,
            prepare=self._prepare_attempt,
            identity=lambda name: identities.get(name, f"{campaign_id}/{name}"),
        )
        self._catalog: RunCatalog | None = None  # opened on first use (tiled costs seconds to import)
        self._opening: Future[RunCatalog] | None = None
        self._imported = threading.Event()  # the catalog's thread has imported what scipy looks up (see settle)
        self._imported.set()
        self._writer: RunWriter | None = None
        self.started = time.monotonic()
        self._closed = False

    def _revoked(self, held: Reservation) -> None:
        """An operator disabled an instrument an experiment of ours holds, asking for its work to be aborted."""
        self.attempts.revoke(held.experiment_id, held.resource, held.revoked or "disabled by an operator")

    @property
    def RE(self) -> RunEngine:
        """The first lane's RunEngine (the only one with one lane)."""
        return self.lanes[0].RE

    @property
    def _run(self) -> RunReadings:
        """The readings of the run that ended last in this process."""
        return self.attempts.last

    def _own(self) -> None:
        """Take the campaign's lease in the store (and the flock) and start renewing it."""
        self.lock.acquire()
        try:
            self.leases.own(self.id)
        except BaseException:
            self.lock.release()
            raise
        self.leases.start()

    # -------------------------------------------------------------- opening
    @staticmethod
    def _open_lab(campaign: Campaign, data_dir: Path, campaign_id: str, source: str | None) -> Lab:
        problems = static_problems(campaign)
        lab, lab_errors = open_lab(campaign, data_dir, campaign_id)  # built once: checked, then used
        problems.extend(lab_errors)
        if lab is not None:
            problems.extend(lab_problems(campaign, lab.inputs))
        if problems:
            if lab is not None:
                lab.close()
            raise SpecError(problems, source)
        assert lab is not None  # no problems means the lab was built
        return lab

    @classmethod
    def create(cls, campaign: Campaign, data_dir: str | Path | None = None, source: str | None = None) -> Self:
        """Check ``campaign``, record it as a new campaign and open it.

        Raises
        ------
        SpecError
            If the campaign cannot run (see :func:`labos.checks.check_campaign`).
        """
        where = Path(data_dir) if data_dir is not None else campaign.data_dir
        campaign_id = new_campaign_id(campaign.name)
        lab = cls._open_lab(campaign, where, campaign_id, source)
        try:
            store = open_store(where)
        except BaseException:
            lab.close()
            raise
        try:
            session = cls(campaign, campaign_id, where, store, lab)
            store.create_campaign(
                campaign_id, campaign.name, campaign.as_json(), source, cls._in_force(campaign, store)
            )
            session._own()
            store.save_planner_state(campaign_id, session._planner_state())
        except BaseException:
            lab.close()
            store.close()
            raise
        return session

    @classmethod
    def resume(cls, data_dir: str | Path, key: str) -> Self:
        """Open the stored campaign ``key`` (an id, or the latest of that name) to continue it.

        Takes the campaign's lock (so a campaign still running elsewhere is refused),
        closes what a dead process left open (:meth:`Store.recover`, with the
        campaign's ``workflow.on_interrupted`` policy), parks the samples it left in
        instruments (:meth:`AttemptRunner.park_stranded`), restores the planner from its
        stored state and marks the campaign ``running`` again.

        Raises
        ------
        StoreError
            No such campaign.
        CampaignBusy
            Another live process is running it.
        SpecError
            Its instruments cannot be opened now.
        """
        where = Path(data_dir)
        store = open_store(where)
        try:
            rec = store.find_campaign(key)
            if rec is None:
                names = sorted({c.name for c in store.campaigns()})
                raise StoreError(f"no campaign {key!r} in {store.db.where}; campaigns: {', '.join(names) or 'none'}")
            if rec.status == "completed":
                raise StoreError(f"campaign {rec.id} has completed: there is nothing to resume")
            campaign = Campaign.model_validate(rec.spec)
            lock = CampaignLock(where, rec.id)
            lock.acquire()
            leases = Leases(store, Settings().lease_s)
            leases.own(rec.id)  # before the lab opens: nothing is touched while another process runs it
        except BaseException:
            with contextlib.suppress(NameError):
                lock.release()
            store.close()
            raise
        try:
            lab = cls._open_lab(campaign, where, rec.id, rec.source)
        except BaseException:
            leases.disown(rec.id)
            lock.release()
            store.close()
            raise
        try:
            session = cls(campaign, rec.id, where, store, lab, leases)
        except BaseException:
            leases.disown(rec.id)
            lock.release()
            lab.close()
            store.close()
            raise
        session.lock = lock
        leases.start()
        try:
            session._recover()
            session.attempts.park_stranded()  # samples its dead (or halted) process left in instruments
            session._restore_planner(store.planner_state(rec.id))
            store.reopen_campaign(rec.id)
        except BaseException:
            session.close()
            raise
        return session

    def _recover(self) -> None:
        """Close what a dead process left open (see :func:`labos.data.runs.recover_campaign`)."""
        reason = "the process running this experiment ended before it finished (closed on resume)"
        recover_campaign(
            self.store,
            lambda: self.catalog,
            self.id,
            self.campaign.workflow.on_interrupted,
            reason,
            journal_dir(self.data_dir, self.id),
        )

    def open_catalog(self) -> None:
        """Start opening the run catalog in the background, and write every run to it (idempotent).

        The catalog is served by a child process (tiled's work off this process's
        interpreter lock). Every document is journaled first and written to tiled behind
        the experiment (see :class:`~labos.data.runs.RunWriter`), so an experiment can start
        before the catalog is there.
        """
        if self._opening is not None:
            return
        self._opening = future = Future[RunCatalog]()
        imported = self._imported
        imported.clear()

        def open_catalog() -> None:
            try:
                import_array_libraries()
            finally:
                imported.set()
            try:
                future.set_result(RunCatalog.open(self.data_dir, self.id, served=True))
            except BaseException as exc:  # noqa: BLE001 - raised where the catalog is needed
                future.set_exception(exc)

        threading.Thread(target=open_catalog, name="labos-open-catalog", daemon=True).start()
        self._writer = RunWriter(future, journal_dir(self.data_dir, self.id))
        for lane in self.lanes:  # one writer takes every lane's runs, interleaved
            lane.RE.subscribe(self._writer)

    def _prepare_attempt(self) -> None:
        """Before an attempt is recorded: the catalog opening (runs journaled until then), imports settled."""
        self.open_catalog()
        self.settle()

    def settle(self) -> None:
        """Wait until the catalog's thread has imported the array libraries and tiled's client (about 1 s).

        Every step of the campaign calls this before it computes; see
        :func:`~labos.data.tiled_app.import_array_libraries`. Those imports are the only
        part of opening the catalog done inside ``warnings.catch_warnings`` (tiled's
        chatter), which is process-wide and not thread-safe: a planner's own
        ``catch_warnings`` at the same time can lose its filters (a scikit-learn
        ``ConvergenceWarning`` escaped a skopt ``tell`` in CI). Nothing waits for the
        catalog itself: its server starts in a child process while experiments run.
        """
        self._imported.wait()

    @property
    def catalog(self) -> RunCatalog:
        """The campaign's Bluesky runs in tiled, with every run so far written to it (waits until it is open)."""
        if self._catalog is None:
            self.open_catalog()
            assert self._opening is not None and self._writer is not None
            catalog = self._opening.result()
            self._writer.flush()
            self._catalog = catalog
        return self._catalog

    @staticmethod
    def _in_force(campaign: Campaign, store: Store) -> dict[str, Any]:
        """Provenance of the lab as it is now: the seed and, if the registry is used, its entries (calibrations)."""
        out: dict[str, Any] = {"seed": campaign.seed}
        if any(i.driver == "registry" for i in campaign.workflow.instruments.values()):
            from labos.data.registry import Registry

            out["registry"] = {
                r.entry.name: {"entry": r.entry.model_dump(mode="json"), "enabled": r.enabled, "reason": r.reason}
                for r in Registry(store).all()
            }
        return out

    def _planner_state(self) -> dict[str, Any] | None:
        return self.planner.state()

    def _planner_log(self, ids: list[str]) -> list[tuple[str, str | None, dict[str, Any]]]:
        """What the planner reported since its last ``ask``/``tell`` (``take_log``), as decision-log entries.

        Entries naming an ``index`` belong to that experiment of ``ids`` (the points of the
        ask, or the outcomes of the tell); the others (an agent's model calls) list them all.
        """
        out: list[tuple[str, str | None, dict[str, Any]]] = []
        for entry in self.planner.take_log():
            payload = dict(entry)
            kind = f"planner.{payload.pop('kind', 'note')}"
            index = payload.pop("index", None)
            if isinstance(index, int) and 0 <= index < len(ids):
                out.append((kind, ids[index], payload))
            else:
                out.append((kind, None, {**payload, "experiments": ids}))
        return out

    def _restore_planner(self, state: Mapping[str, Any] | None) -> None:
        """The planner as it was after its last stored ``ask``/``tell``.

        A store written before states were kept is rebuilt by telling the planner every
        outcome it had been told, in order.
        """
        cls: type[Planner] = get_planner_class(self.campaign.planner.name)
        if state is not None:
            self.planner = cls.restore(self.campaign.space, self.campaign.objectives, state)
            return
        told = [r for r in self.records() if r.told and outcome_told(r)]
        told.sort(key=lambda r: (r.finished or 0.0, r.seq))
        if told:
            self.planner.tell([observation_of(r) for r in told])

    # --------------------------------------------------------------- reading
    def records(self) -> list[ExperimentRecord]:
        """The campaign's experiments as stored."""
        return self.store.experiments(self.id)

    def next_step(self, stop_request: str | None = None, in_flight: Collection[str] = ()) -> Step:
        """What to do next (see :func:`labos.loop.decide`); a stop asked through the store counts too.

        ``in_flight``: the experiments this process's lanes are running now.
        """
        stored = self.store.campaign(self.id).stop_request
        return decide(self.campaign, self.records(), stop_request or stored, time.time(), in_flight)

    # ----------------------------------------------------------------- steps
    def propose(self, n: int) -> list[str]:
        """Ask the planner for ``n`` experiments and record them with its new state; their ids.

        Raises
        ------
        OutOfBoundsError
            If the planner proposes a point outside the space (nothing is recorded).
        """
        self.settle()
        records = self.records()
        pending = [r.params for r in records if State(r.status) in PENDING]
        points = self.planner.ask(n, pending=pending)
        for p in points:  # the safety gate does not trust the planner
            problems = self.campaign.space.problems(p)
            if problems:
                raise OutOfBoundsError(f"planner {self.campaign.planner.name!r} proposed {p}: {'; '.join(problems)}")
        return self.store.add_points(
            self.id, self.campaign.planner.name, [dict(p) for p in points], self._planner_state(), self._planner_log
        )

    def run(self, experiment_id: str) -> dict[str, Any]:
        """Run one attempt of a queued experiment on a free lane (see :meth:`AttemptRunner.run`)."""
        return self.attempts.run(experiment_id)

    def queue(self, experiment_id: str) -> None:
        """Put a proposal in the run queue (no approval policy yet: every proposal is approved)."""
        self.store.transition(experiment_id, State.QUEUED)

    def analyse(self, experiment_id: str) -> dict[str, Any]:
        """Turn a measured experiment's stored raw data into metrics and objectives, and record them.

        The readings are those of the run's documents as recorded: the run this process
        has just made is analysed from the documents it wrote (held in memory: they are in
        tiled or in the run's synced journal by then, so no read-back and no wait for a
        catalog still opening); any other run, such as a measured experiment whose process
        died, is read back from tiled.

        Raises
        ------
        SoftwareError
            If the analysis crashed through a bug (the experiment is failed, cause ``software``).
        """
        self.settle()
        record = self.store.experiment(experiment_id)
        run_uid = record.run_uids[-1] if record.run_uids else None
        readings = self._readings(run_uid)
        metrics: dict[str, float] = {}
        try:
            for step in self.campaign.workflow.steps:
                if step.action != "measure":
                    continue
                # the stream of whichever of the step's instruments this experiment got
                name = next((n for n in step.instruments if n in readings), step.instrument)
                kind = self.campaign.workflow.instruments[name].kind
                metrics.update(analyse(kind, name, readings.get(name, [])))
            objectives = {o.name: o.value(metrics) for o in self.campaign.objectives}
            bad = [k for k, v in objectives.items() if not math.isfinite(v)]
            if bad:
                raise AnalysisError(f"objective {', '.join(bad)} is not a finite number")
        except AnalysisError as exc:
            self.store.transition(
                experiment_id, State.FAILED, error=f"analysis: {exc}", cause=Cause.ANALYSIS.value, metrics=metrics
            )
            return {"state": State.FAILED.value, "error": f"analysis: {exc}"}
        except Exception as exc:
            failure = classify(exc)
            self.store.transition(
                experiment_id,
                State.FAILED,
                error=failure.reason,
                cause=Cause.SOFTWARE.value,
                traceback="".join(traceback.format_exception(exc)),
            )
            raise SoftwareError(f"analysing experiment {experiment_id} failed through a bug: {failure.reason}") from exc
        plain = {k: v for k, v in metrics.items() if "." not in k}
        self.store.transition(experiment_id, State.COMPLETED, metrics=plain, objectives=objectives)
        return {"state": State.COMPLETED.value, "objectives": objectives}

    def _readings(self, run_uid: str | None) -> dict[str, list[dict[str, Any]]]:
        """A run's readings by stream: from memory if it is the run this process has just ended, else from tiled."""
        if run_uid is None:
            return {}
        made = self.attempts.readings_of(run_uid)
        if made is not None:
            return made.readings
        return RunReadings.of(self.catalog.documents(run_uid)).readings

    def tell(self) -> list[str]:
        """Tell the planner every outcome it has not learned yet (in the order they ended); their ids."""
        self.settle()
        untold = [r for r in self.records() if outcome_told(r) and not r.told]
        untold.sort(key=lambda r: (r.finished or 0.0, r.seq))
        if not untold:
            return []
        self.planner.tell([observation_of(r) for r in untold])
        ids = [r.id for r in untold]
        self.store.mark_told(self.id, ids, self._planner_state(), self._planner_log(ids))
        return ids

    # --------------------------------------------------------------- summary
    def observations(self) -> list[Observation]:
        """Every finished experiment as an observation, in ``seq`` order."""
        return [observation_of(r) for r in self.records() if outcome_told(r)]

    def best(self) -> Observation | None:
        """The best successful observation by the primary objective."""
        o = self.campaign.primary
        best: Observation | None = None
        for obs in self.observations():
            if obs.ok and (best is None or o.better(obs.objectives[o.name], best.objectives[o.name])):
                best = obs
        return best

    def pareto(self) -> list[Observation]:
        """The non-dominated successful observations over every objective."""
        return pareto_front(self.observations(), self.campaign.objectives)

    # ------------------------------------------------------------- lifecycle
    def finish(self, status: str, message: str | None = None) -> None:
        """Mark the campaign finished and release instruments and the lock (idempotent)."""
        if self._closed:
            return
        try:
            self.store.finish_campaign(self.id, status, message)
        finally:
            self.close()

    def close(self) -> None:
        """Release instruments, the store and the lock without changing the campaign's status (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.lab is not None:
                self.lab.close()
        finally:
            try:
                if self._opening is not None:
                    try:
                        if self._writer is not None:
                            self._writer.close()  # the runs still on their way to tiled
                    except RunStoreError as exc:  # they stay journaled, imported on resume
                        log.warning("%s", exc)
                    finally:
                        with contextlib.suppress(Exception):  # failed to open: nothing to close
                            self._opening.result().close()
            finally:
                try:
                    self.leases.close()
                    with contextlib.suppress(StoreError):
                        self.leases.disown(self.id)
                finally:
                    self.lock.release()
                    self.store.close()
