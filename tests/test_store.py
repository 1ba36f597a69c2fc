from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from labos.core.errors import StoreError
from labos.core.lifecycle import Cause, IllegalTransition, State
from labos.data.documents import RunReadings
from labos.data.recovery import adopt_legacy_runs
from labos.data.runs import RunCatalog
from labos.data.schema import HEAD
from labos.data.store import SCHEMA_VERSION, Store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """Every store test runs on SQLite and on a real PostgreSQL server."""
    target = tmp_path if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with Store(target) as s:
        yield s


def test_campaign_and_experiment_round_trip(store):
    store.create_campaign("c1", "demo", {"name": "demo", "x": [1, 2]}, "demo.yaml")
    store.add_proposals("c1", [("c1-0001", 1, "skopt", {"a": 0.5, "s": "dmf"})], {"journal": [1]})
    store.transition("c1-0001", State.QUEUED)
    assert store.start_attempt("c1-0001") == 1
    store.end_attempt("c1-0001", 1, target=State.QUEUED, run_uid="run-a", error="jam", cause=Cause.INSTRUMENT)
    assert store.start_attempt("c1-0001") == 2
    store.end_attempt("c1-0001", 2, target=State.MEASURED, run_uid="run-b", instrument_time_s=900.0)
    store.transition("c1-0001", State.COMPLETED, metrics={"g": np.float64(2.1)}, objectives={"e": 0.01})
    (e,) = store.experiments("c1")
    assert e.params == {"a": 0.5, "s": "dmf"}
    assert e.status == "completed" and e.attempts == 2 and e.run_uids == ["run-a", "run-b"]
    assert e.metrics == {"g": 2.1} and e.objectives == {"e": 0.01} and e.instrument_time_s == 900.0
    assert not e.told
    a1, a2 = store.attempts("c1")
    assert (a1.status, a1.cause, a1.run_uid, a2.status) == ("failed", "instrument", "run-a", "succeeded")
    store.mark_told("c1", ["c1-0001"], {"journal": [1, 2]})
    rec = store.find_campaign("demo")
    assert rec is not None and rec.id == "c1" and rec.spec["x"] == [1, 2] and rec.status == "running"
    assert store.planner_state("c1") == {"journal": [1, 2]} and store.experiments("c1")[0].told
    assert rec.planner_state == {"journal_rows": 2}  # the row keeps the rest; the journal is in rows of its own
    assert "versions" in rec.provenance
    moves = [(ev["payload"]["from"], ev["payload"]["to"]) for ev in store.events("c1") if ev["kind"] == "transition"]
    assert moves == [
        ("proposed", "queued"),
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "measured"),
        ("measured", "completed"),
    ]


def test_an_illegal_transition_raises_and_changes_nothing(store):
    store.create_campaign("c1", "demo", {}, None)
    store.add_proposals("c1", [("c1-0001", 1, "random", {"a": 1})], None)
    with pytest.raises(IllegalTransition, match="cannot go from proposed to running"):
        store.start_attempt("c1-0001")
    with pytest.raises(IllegalTransition, match="cannot go from proposed to completed"):
        store.transition("c1-0001", State.COMPLETED, objectives={"e": 1.0})
    (e,) = store.experiments("c1")
    assert e.status == "proposed" and e.attempts == 0 and e.objectives is None
    store.transition("c1-0001", State.CANCELLED)
    with pytest.raises(IllegalTransition, match="none: it is final"):
        store.transition("c1-0001", State.QUEUED)


def test_stopping_keeps_the_queue_and_completing_cancels_it(store):
    store.create_campaign("c1", "demo", {}, None)
    store.add_proposals("c1", [("c1-0001", 1, "random", {"a": 1}), ("c1-0002", 2, "random", {"a": 2})], None)
    store.transition("c1-0001", State.QUEUED)
    store.finish_campaign("c1", "stopped", "interrupted by the user")
    assert [e.status for e in store.experiments("c1")] == ["queued", "proposed"]
    assert store.find_campaign("c1").message == "interrupted by the user"
    store.finish_campaign("c1", "completed")
    assert [e.status for e in store.experiments("c1")] == ["cancelled", "cancelled"]


def test_recovery_interrupts_what_was_running_and_links_its_run(store):
    store.create_campaign("c1", "demo", {}, None)
    store.add_proposals("c1", [("c1-0001", 1, "random", {"a": 1}), ("c1-0002", 2, "random", {"a": 2})], None)
    for eid in ("c1-0001", "c1-0002"):
        store.transition(eid, State.QUEUED)
        store.start_attempt(eid)
    assert store.has_running_attempts("c1")
    runs = [("r1", "c1-0001", 1), ("r-old", "c1-0001", 7), ("r-other", "c9-0001", 1)]
    counts = store.recover("c1", "rerun", "the process died", runs)
    assert counts == {"attempts": 2, "runs": 1, "requeued": 2, "failed": 0}
    assert not store.has_running_attempts("c1")
    assert [e.status for e in store.experiments("c1")] == ["queued", "queued"]
    assert {a.status for a in store.attempts("c1")} == {"interrupted"}
    assert store.attempts("c1")[0].run_uid == "r1" and store.experiments("c1")[0].run_uids == ["r1"]
    assert store.attempts("c1")[1].run_uid is None
    assert store.recover("c1", "rerun", "again", runs) == {"attempts": 0, "runs": 0, "requeued": 0, "failed": 0}
    store.start_attempt("c1-0001")
    assert store.recover("c1", "fail", "died again")["failed"] == 1
    e1 = store.experiments("c1")[0]
    assert (e1.status, e1.cause, e1.attempts) == ("failed", "interrupted", 2)


@pytest.mark.e2e  # moves the legacy runs into a real (in-process) tiled catalog
def test_a_store_written_by_schema_1_is_migrated_on_open(tmp_path):
    db = tmp_path / "labos.sqlite"
    shutil.copy(FIXTURES / "store-v1.sqlite", db)
    with Store(db) as store:
        (c,) = store.campaigns()
        exps = store.experiments(c.id)
        assert [e.status for e in exps] == ["completed", "completed", "failed", "completed"]
        assert exps[2].cause == "instrument" and all(e.told for e in exps)
        assert [len([a for a in store.attempts(c.id) if a.experiment_id == e.id]) for e in exps] == [1, 3, 3, 1]
        legacy = store.legacy_runs(c.id)  # the documents schema 1 kept itself, until they are in tiled
        assert len(legacy) == 8 and all(docs[0][0] == "start" and docs[-1][0] == "stop" for docs in legacy.values())
        with RunCatalog.open(tmp_path, c.id) as runs:
            assert adopt_legacy_runs(store, runs, c.id) == 8
            assert store.legacy_runs(c.id) == {}
            assert sorted(uid for uid, _ in runs.runs()) == sorted(legacy)
            for uid, docs in legacy.items():
                back = runs.documents(uid)
                assert [n for n, _ in back] == [n for n, _ in docs]
                assert RunReadings.of(back).readings == RunReadings.of(docs).readings
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_new_store_has_no_documents_table(tmp_path):
    with Store(tmp_path) as store:
        assert store.legacy_runs("c1") == {}
    with sqlite3.connect(tmp_path / "labos.sqlite") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "documents" not in tables and "legacy_documents" not in tables


def test_an_sqlite_file_of_another_program_is_refused(tmp_path):
    db = tmp_path / "labos.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError, match="not a labos store"):
        Store(db)


def test_a_failed_write_leaves_nothing_half_written(store):
    store.create_campaign("c1", "demo", {}, None)
    store.add_proposals("c1", [("c1-0001", 1, "random", {"a": 1})], {"s": 1})
    with pytest.raises(StoreError):  # the second is a duplicate: the whole transaction is rolled back
        store.add_proposals("c1", [("c1-0002", 2, "random", {"a": 3}), ("c1-0001", 1, "random", {"a": 2})], {"s": 2})
    assert [e.params for e in store.experiments("c1")] == [{"a": 1}]
    assert store.find_campaign("c1").planner_state == {"s": 1}
    assert [ev["kind"] for ev in store.events("c1")].count("proposed") == 1


def test_refuses_a_store_from_a_newer_labos(tmp_path):
    db = tmp_path / "labos.sqlite"
    Store(db).close()
    with sqlite3.connect(db) as c:
        c.execute("UPDATE alembic_version SET version_num='9999'")
    with pytest.raises(StoreError, match=rf"newer labos \(schema revision 9999; this labos knows up to {HEAD}\)"):
        Store(db)
    legacy = tmp_path / "legacy.sqlite"
    with sqlite3.connect(legacy) as c:
        c.execute("CREATE TABLE campaigns (id TEXT)")
        c.execute("CREATE TABLE experiments (id TEXT)")
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer labos"):
        Store(legacy)


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    db = tmp_path / "labos.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the labos store"):
        Store(db)


def test_an_unreachable_database_is_a_clear_error_without_its_password(monkeypatch, tmp_path, capsys):
    from labos.cli import main
    from tests.conftest import free_port

    url = f"postgresql://labos:s3cret@127.0.0.1:{free_port()}/labos"  # nothing listens there
    with pytest.raises(StoreError, match=r"cannot open the labos store postgresql://labos:\*\*\*@127\.0\.0\.1") as info:
        Store(url)
    assert "s3cret" not in str(info.value)
    monkeypatch.setenv("LABOS_STORE_URL", url)
    assert main(["show", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot open the labos store" in err and "s3cret" not in err
    with pytest.raises(StoreError, match="cannot use the store URL"):
        Store("nosuchdb://x/y")


def test_json_records_numpy_and_nan_and_refuses_what_it_cannot_hold():
    from labos.data.jsonutil import dumps, loads

    assert loads(dumps({"spec": np.arange(3.0), "n": np.int64(2), "nan": float("nan")})) == {
        "spec": [0.0, 1.0, 2.0],
        "n": 2,
        "nan": None,
    }
    with pytest.raises(TypeError, match="cannot record a object as JSON"):
        dumps({"x": object()})


def test_a_planners_journal_is_appended_not_rewritten(store):
    """Each ask or tell writes its own journal entry: the row's state stays small however long the journal."""
    store.create_campaign("c1", "demo", {}, None)
    sizes = []
    for k in range(1, 60):
        state = {"format": 1, "seed": 0, "journal": [{"op": "tell", "i": i} for i in range(k)]}
        store.mark_told("c1", [], state)
        sizes.append(len(store.query("SELECT planner_state FROM campaigns WHERE id='c1'")[0][0]))
        assert store.query("SELECT COUNT(*) FROM planner_journal WHERE campaign_id='c1'")[0][0] == k
    assert max(sizes) - min(sizes) <= 2  # only the length's digits grow
    assert store.planner_state("c1") == state
    store.save_planner_state("c1", {"format": 1, "seed": 0, "journal": [{"op": "ask"}]})  # a fresh planner
    assert store.planner_state("c1") == {"format": 1, "seed": 0, "journal": [{"op": "ask"}]}
    store.save_planner_state("c1", {"opaque": True})  # a state without a journal is kept whole
    assert store.planner_state("c1") == {"opaque": True}
