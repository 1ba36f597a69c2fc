from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from labos.core.errors import StoreError
from labos.data.store import SCHEMA_VERSION, Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path) as s:
        yield s


def test_campaign_and_experiment_round_trip(store):
    store.create_campaign("c1", "demo", {"name": "demo", "x": [1, 2]}, "demo.yaml")
    store.add_proposal("c1", "c1-0001", 1, "skopt", {"a": 0.5, "s": "dmf"})
    assert store.start_attempt("c1", "c1-0001") == 1
    assert store.start_attempt("c1", "c1-0001") == 2
    store.add_run_uid("c1-0001", "run-a")
    store.add_run_uid("c1-0001", "run-b")
    store.record_result(
        "c1",
        "c1-0001",
        status="ok",
        metrics={"g": np.float64(2.1)},
        objectives={"e": 0.01},
        error=None,
        instrument_time_s=900.0,
    )
    (e,) = store.experiments("c1")
    assert e.params == {"a": 0.5, "s": "dmf"}
    assert e.status == "ok" and e.attempts == 2 and e.run_uids == ["run-a", "run-b"]
    assert e.metrics == {"g": 2.1} and e.objectives == {"e": 0.01} and e.instrument_time_s == 900.0
    rec = store.find_campaign("demo")
    assert rec is not None and rec.id == "c1" and rec.spec["x"] == [1, 2] and rec.status == "running"
    assert "versions" in rec.provenance
    kinds = [ev["kind"] for ev in store.events("c1")]
    assert kinds == ["campaign_started", "proposed", "attempt_started", "attempt_started", "result"]


def test_finishing_marks_unfinished_experiments_failed(store):
    store.create_campaign("c1", "demo", {}, None)
    store.add_proposal("c1", "c1-0001", 1, "random", {"a": 1})
    store.add_proposal("c1", "c1-0002", 2, "random", {"a": 2})
    store.start_attempt("c1", "c1-0001")
    store.finish_campaign("c1", "stopped", "interrupted by the user")
    e1, e2 = store.experiments("c1")
    assert e1.status == "failed" and e1.error == "never completed: campaign stopped"
    assert e2.status == "cancelled" and e2.error == "never started: campaign stopped"
    assert store.find_campaign("c1").message == "interrupted by the user"


def test_documents_keep_order_and_numpy_arrays(store):
    store.create_campaign("c1", "demo", {}, None)
    store.add_document("c1", "r1", "start", {"uid": "r1"})
    store.add_document("c1", "r1", "event", {"data": {"spec": np.arange(3.0), "nan": float("nan")}})
    docs = store.documents("r1")
    assert [n for n, _ in docs] == ["start", "event"]
    assert docs[1][1]["data"] == {"spec": [0.0, 1.0, 2.0], "nan": None}


def test_a_failed_write_leaves_nothing_half_written(store):
    store.create_campaign("c1", "demo", {}, None)
    store.add_proposal("c1", "c1-0001", 1, "random", {"a": 1})
    with pytest.raises(StoreError):
        store.add_proposal("c1", "c1-0001", 1, "random", {"a": 2})  # duplicate id: whole transaction rolled back
    assert [e.params for e in store.experiments("c1")] == [{"a": 1}]
    assert [ev["kind"] for ev in store.events("c1")].count("proposed") == 1


def test_refuses_a_store_from_a_newer_labos(tmp_path):
    db = tmp_path / "labos.sqlite"
    with sqlite3.connect(db) as c:
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer labos"):
        Store(db)


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    db = tmp_path / "labos.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the labos store"):
        Store(db)
