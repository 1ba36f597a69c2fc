"""Bluesky runs in tiled: written by TiledWriter, closed after a crash, served to tiled's own client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from flows.settings import stop_process
from labos.core.campaign import Campaign
from labos.core.errors import StoreError
from labos.data.lock import CampaignBusy
from labos.data.runs import RunCatalog, RunStoreError
from labos.session import CampaignSession
from tests.conftest import free_port

pytestmark = pytest.mark.e2e


def run_experiments(session: CampaignSession, n: int) -> list[str]:
    ids = session.propose(n)
    for eid in ids:
        session.queue(eid)
        session.run(eid)
        session.analyse(eid)
    return ids


def test_data_serve_lets_tiled_read_back_what_the_device_produced(small_spec, tmp_path):
    campaign = Campaign.model_validate(small_spec)
    produced: list[tuple[str, dict]] = []
    session = CampaignSession.create(campaign, tmp_path)
    session.RE.subscribe(lambda name, doc: produced.append((name, doc)))  # what the RunEngine emitted
    try:
        ids = run_experiments(session, 2)
        runs = {e.id: e.run_uids[-1] for e in session.records()}
    finally:
        session.finish("stopped")
    events = [d for n, d in produced if n == "event"]
    assert events

    port, key = free_port(), "testkey123"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labos.cli",
            "data",
            "serve",
            session.id,
            "--port",
            str(port),
            "--api-key",
            key,
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        from tiled.client import from_uri

        url = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                client = from_uri(url, api_key=key)
                break
            except Exception:  # noqa: BLE001 - not up yet
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "tiled server did not start"
                time.sleep(0.3)
        with pytest.raises(CampaignBusy):  # the server holds the catalog: no campaign process writes it now
            CampaignSession.resume(tmp_path, session.id)
        assert sorted(client) == sorted(runs.values())
        for eid in ids:
            run = client[runs[eid]]
            assert run.metadata["start"]["experiment_id"] == eid and run.metadata["stop"]["exit_status"] == "success"
            mine = [e for e in events if e["data"].get("uvvis_absorbance") is not None]
            stream = run["uvvis"]
            spectrum = stream["uvvis_absorbance"].read()
            wavelengths = stream["uvvis_wavelength"].read()
            sent = [e for e in mine if np.array_equal(e["data"]["uvvis_wavelength"], wavelengths[0])]
            assert any(np.array_equal(e["data"]["uvvis_absorbance"], spectrum[0]) for e in sent)
        client.context.close()
        import httpx

        assert httpx.get(f"{url}/metadata/", headers={"Authorization": "Apikey wrong"}).status_code == 401
    finally:
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()


def test_a_run_left_open_by_a_dead_process_is_closed_with_abort(small_spec, tmp_path):
    from bluesky import RunEngine
    from bluesky.callbacks.tiled_writer import TiledWriter
    from bluesky.plans import count
    from ophyd.sim import det

    docs: list[tuple[str, dict]] = []
    RE = RunEngine({}, context_managers=[])
    RE.subscribe(lambda n, d: docs.append((n, d)))
    RE(count([det], 3, md={"experiment_id": "c1-0001", "attempt": 1}))
    with RunCatalog.open(tmp_path, "c1") as runs:
        writer = TiledWriter(runs.node, batch_size=1)
        for name, doc in docs[:-1]:  # everything but the stop document: the process died
            writer(name, doc)
        ((uid, start),) = runs.open_runs()
        assert start["experiment_id"] == "c1-0001"
        stop = runs.close_run(uid, "the process died")
        assert stop["exit_status"] == "abort" and stop["reason"] == "the process died"
        assert stop["num_events"] == {"primary": 3}
        assert runs.open_runs() == []
        names = [n for n, _ in runs.documents(uid)]
        assert names == ["start", "descriptor", "event", "event", "event", "stop"]
        with pytest.raises(RunStoreError, match="not in the tiled catalog"):
            runs.documents("no-such-run")


def test_a_failed_tiled_write_loses_nothing_and_the_runs_reach_tiled_on_resume(small_spec, tmp_path, caplog):
    """The journal is the durable record: tiled gone under the campaign, the experiment still completes."""
    from labos.data.runs import journal_dir, read_journal

    campaign = Campaign.model_validate(small_spec)
    session = CampaignSession.create(campaign, tmp_path)
    try:
        run_experiments(session, 1)
        (eid,) = session.propose(1)
        session.queue(eid)
        session.catalog.close()  # tiled goes away under the running campaign
        session.run(eid)
        assert session.analyse(eid)["state"] == "completed"
        assert session._writer is not None
        with pytest.raises(StoreError, match=r"could not write the Bluesky runs to tiled.*kept in"):
            session._writer.flush()
        (journal,) = journal_dir(tmp_path, session.id).glob("*.jsonl")
        docs = read_journal(journal)
        assert docs[0][0] == "start" and docs[0][1]["experiment_id"] == eid
        assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "success"
    finally:
        session.close()  # logs where the runs wait; raises nothing
    assert "imported on resume" in caplog.text
    session = CampaignSession.resume(tmp_path, session.id)  # the journal goes into tiled
    try:
        assert not list(journal_dir(tmp_path, session.id).glob("*.jsonl"))
        listed = session.catalog.runs()
        assert [md["start"]["experiment_id"] for _, md in listed][-1] == eid
        assert listed[-1][1]["stop"]["exit_status"] == "success"
        assert [a.status for a in session.store.attempts(session.id) if a.experiment_id == eid] == ["succeeded"]
    finally:
        session.close()


def test_campaigns_can_write_to_a_tiled_server(small_spec, tmp_path, monkeypatch):
    """LABOS_TILED_URL: a facility's tiled server (configured as the operators' guide says) holds the runs."""
    import textwrap

    port, key = free_port(), "serverkey42"
    (tmp_path / "server" / "data").mkdir(parents=True)
    config = tmp_path / "server" / "config.yml"
    config.write_text(
        textwrap.dedent(f"""
        authentication:
          single_user_api_key: {key}
        trees:
          - path: /
            tree: catalog
            args:
              uri: sqlite:///{tmp_path}/server/catalog.db
              writable_storage: ["{tmp_path}/server/data", "duckdb:///{tmp_path}/server/tables.duckdb"]
              init_if_not_exists: true
        media_types:
          BlueskyRun:
            application/json-seq: bluesky_tiled_plugins.exporters:json_seq_exporter
        """)
    )
    tiled = Path(sys.executable).parent / "tiled"
    proc = subprocess.Popen(
        [str(tiled), "serve", "config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import httpx

        url = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "tiled server did not start"
            time.sleep(0.3)
        monkeypatch.setenv("LABOS_TILED_URL", url)
        monkeypatch.setenv("LABOS_TILED_API_KEY", key)
        session = CampaignSession.create(Campaign.model_validate(small_spec), tmp_path / "data")
        try:
            ids = run_experiments(session, 2)  # the analysis reads the runs back from the server
            records = {r.id: r for r in session.records()}
        finally:
            session.finish("stopped")
        assert all(records[e].status == "completed" for e in ids)
        assert not (tmp_path / "data" / "tiled" / session.id).exists()  # nothing embedded
        from tiled.client import from_uri

        client = from_uri(url, api_key=key)
        try:
            runs = client[session.id]
            assert sorted(runs) == sorted(records[e].run_uids[-1] for e in ids)
            assert all(run.metadata["stop"]["exit_status"] == "success" for run in runs.values())
        finally:
            client.context.close()
    finally:
        stop_process(proc)


@pytest.mark.unit
def test_data_serve_refuses_bad_requests_clearly(tmp_path, capsys):
    from labos.cli import main
    from labos.data.lock import CampaignLock
    from labos.data.store import Store

    with Store(tmp_path) as store:
        store.create_campaign("c1", "demo", {}, None)
    args = ["data", "serve", "--data-dir", str(tmp_path)]
    assert main([*args[:2], "nope", *args[2:]]) == 2
    assert "no campaign 'nope'" in capsys.readouterr().err
    assert main([*args[:2], "c1", *args[2:]]) == 2
    assert "has no Bluesky runs yet" in capsys.readouterr().err
    (tmp_path / "tiled" / "c1").mkdir(parents=True)
    (tmp_path / "tiled" / "c1" / "catalog.db").touch()
    assert main([*args[:2], "c1", "--api-key", "bad key!", *args[2:]]) == 2
    assert "letters and digits only" in capsys.readouterr().err
    lock = CampaignLock(tmp_path, "c1")
    lock.acquire()  # the refused server did not keep the campaign locked
    lock.release()


def test_runs_wait_in_a_journal_until_the_catalog_opens_then_reach_it_whole(tmp_path):
    """The catalog opens in the background: a run before it, and one during which it opens, both end in tiled."""
    from concurrent.futures import Future

    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import det

    from labos.data.runs import RunWriter, journal_dir, read_journal

    journal = journal_dir(tmp_path, "c1")
    opening: Future[RunCatalog] = Future()
    RE = RunEngine({}, context_managers=[])
    writer = RunWriter(opening, journal)
    RE.subscribe(writer)
    RE(count([det], 2, md={"experiment_id": "c1-0001"}))  # tiled not open yet: journaled
    (first,) = journal.glob("*.jsonl")
    # routed by event_model.RunRouter, which hands events on as pages of one
    assert [n for n, _ in read_journal(first)] == ["start", "descriptor", "event_page", "event_page", "stop"]

    def open_half_way(name: str, doc: dict) -> None:
        if name == "event" and not opening.done():
            opening.set_result(RunCatalog.open(tmp_path, "c1"))

    RE.subscribe(open_half_way)
    RE(count([det], 3, md={"experiment_id": "c1-0002"}))
    writer.flush(timeout=60)  # written behind the experiments
    runs = opening.result()
    try:
        listed = runs.runs()
        assert [md["start"]["experiment_id"] for _, md in listed] == ["c1-0001", "c1-0002"]
        for (uid, _), n in zip(listed, (2, 3), strict=True):
            assert [name for name, _ in runs.documents(uid)] == ["start", "descriptor"] + ["event"] * n + ["stop"]
        assert not list(journal.glob("*.jsonl"))
    finally:
        runs.close()


def test_a_run_journaled_by_a_process_that_died_before_tiled_opened_is_imported_on_resume(
    small_spec, tmp_path, monkeypatch
):
    import threading

    from labos.data.runs import journal_dir

    release = threading.Event()

    def never_opens(*args: object, **kwargs: object) -> RunCatalog:
        release.wait(60)
        raise RunStoreError("this process ended before tiled opened")

    campaign = Campaign.model_validate(small_spec)
    with monkeypatch.context() as m:
        m.setattr(RunCatalog, "open", never_opens)
        session = CampaignSession.create(campaign, tmp_path)
        (eid,) = session.propose(1)
        session.queue(eid)
        session.run(eid)  # measured; its run only in the journal
        assert session.store.experiment(eid).status == "measured"
        assert len(list(journal_dir(tmp_path, session.id).glob("*.jsonl"))) == 1
        release.set()
        session.close()
    session = CampaignSession.resume(tmp_path, session.id)
    try:
        assert not list(journal_dir(tmp_path, session.id).glob("*.jsonl"))
        ((_, md),) = session.catalog.runs()
        assert md["start"]["experiment_id"] == eid and md["stop"]["exit_status"] == "success"
        assert session.analyse(eid)["state"] == "completed"
    finally:
        session.close()


def test_the_run_just_made_is_analysed_without_waiting_for_tiled_and_as_tiled_records_it(
    small_spec, tmp_path, monkeypatch
):
    """Analysis of this process's own run needs no catalog; read back from tiled later, it gives the same result."""
    import threading

    from labos.data.documents import RunReadings
    from labos.data.runs import journal_dir

    release = threading.Event()
    real_open = RunCatalog.open

    def slow_open(*args: object, **kwargs: object) -> RunCatalog:
        if not release.wait(20):
            raise RunStoreError("the analysis waited for the catalog")
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    campaign = Campaign.model_validate(small_spec)
    monkeypatch.setattr(RunCatalog, "open", slow_open)
    session = CampaignSession.create(campaign, tmp_path)
    try:
        (eid,) = session.propose(1)
        session.queue(eid)
        session.run(eid)
        done = session.analyse(eid)  # would fail after 20 s if it read tiled
        assert done["state"] == "completed" and not release.is_set()
        assert len(list(journal_dir(tmp_path, session.id).glob("*.jsonl"))) == 1
        release.set()
        (run_uid,) = session.store.experiment(eid).run_uids
        again = RunReadings.of(session.catalog.documents(run_uid)).readings
        assert again.keys() == session._run.readings.keys()
        for stream, rows in again.items():
            for back, made in zip(rows, session._run.readings[stream], strict=True):
                assert back.keys() == made.keys()
                for key, value in back.items():
                    np.testing.assert_array_equal(np.asarray(value), np.asarray(made[key]))
        assert not list(journal_dir(tmp_path, session.id).glob("*.jsonl"))
    finally:
        release.set()
        session.close()


def test_no_step_computes_while_the_catalog_thread_imports_the_array_libraries(small_spec, tmp_path, monkeypatch):
    """scipy looks dask.array up in sys.modules: half-imported by the catalog's thread, it broke the first analysis."""
    import threading

    import labos.session as session_module

    importing = threading.Event()
    order: list[str] = []

    def slow_imports() -> None:
        importing.set()
        time.sleep(1.0)
        order.append("imported")

    real_ask = session_module.CampaignSession.propose
    real_analyse = session_module.analyse

    def analyse(*args: object, **kwargs: object) -> object:
        order.append("analysis")
        return real_analyse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(session_module, "import_array_libraries", slow_imports)
    monkeypatch.setattr(session_module, "analyse", analyse)
    campaign = Campaign.model_validate(small_spec)
    session = CampaignSession.create(campaign, tmp_path)
    try:
        session.open_catalog()
        assert importing.wait(10)
        (eid,) = real_ask(session, 1)
        order.append("proposed")
        session.queue(eid)
        session.run(eid)
        assert session.analyse(eid)["state"] == "completed"
        assert order[0] == "imported" and order[1:] == ["proposed", "analysis"]
    finally:
        session.close()


def test_tell_does_not_wait_for_tiled_and_no_catalog_thread_touches_the_warning_filters(
    small_spec, tmp_path, monkeypatch
):
    """catch_warnings is process-wide: after its imports, the catalog's side (opening, shipping) never enters it.

    A planner's tell enters it (skopt, scikit-learn); when another thread did at the same
    time, a ``ConvergenceWarning`` escaped. So the catalog's thread does its quiet imports
    first (every step waits for those), and the rest, which tell need not wait for, is quiet-free.
    """
    import threading
    import warnings

    real_open = RunCatalog.open
    opened = threading.Event()
    late: list[str] = []
    holder: dict[str, CampaignSession] = {}

    def slow_open(*args: object, **kwargs: object) -> RunCatalog:
        time.sleep(2.0)
        catalog = real_open(*args, **kwargs)  # type: ignore[arg-type]
        opened.set()
        return catalog

    class Recording(warnings.catch_warnings):  # type: ignore[type-arg]
        def __enter__(self) -> object:
            session = holder.get("session")
            here = threading.current_thread()
            if here is not threading.main_thread() and session is not None and session._imported.is_set():
                late.append(here.name)
            return super().__enter__()

    monkeypatch.setattr(RunCatalog, "open", slow_open)
    monkeypatch.setattr(warnings, "catch_warnings", Recording)
    session = holder["session"] = CampaignSession.create(Campaign.model_validate(small_spec), tmp_path)
    try:
        (eid,) = session.propose(1)
        session.queue(eid)
        session.run(eid)
        assert session.analyse(eid)["state"] == "completed"
        assert session.tell() == [eid]
        assert not opened.is_set()  # neither the run, its analysis nor tell waited for tiled
        run_experiments(session, 2)
        assert session.catalog.runs()  # opened, and the runs shipped
    finally:
        session.close()
    assert opened.is_set() and late == []
