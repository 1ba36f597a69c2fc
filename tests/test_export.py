"""Export: flat tables with failures and causes, and an RO-Crate that passes roc-validator."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
import urllib3
from requests_cache import CachedSession

from flows.campaign import run_campaign
from labos.cli import main
from labos.data.store import Store

pytestmark = pytest.mark.e2e

CONTEXT = Path(__file__).parent / "data" / "rocrate" / "ro-crate-1.1-context.jsonld"
CONTEXT_URL = "https://w3id.org/ro/crate/1.1/context"


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, demo_spec_master):
    """A finished campaign with failures (analysis and instrument) and retried attempts."""
    data = tmp_path_factory.mktemp("export")
    spec = json.loads(json.dumps(demo_spec_master))
    spec["simulation"] |= {"acceleration": float("inf"), "fault_rate": 0.15}
    spec["budget"]["max_experiments"] = 8
    spec["planner"] = {"name": "random", "options": {}}
    spec["workflow"]["retries"] = 1
    summary = run_campaign(spec, data, plot=False)
    assert summary.n_failed >= 1, "the fault rate should fail some experiment"
    return data, summary.campaign_id


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def warm_validator_cache(path: Path) -> Path:
    """The validator's HTTP cache holding the RO-Crate 1.1 context (this machine has no network)."""
    data = CONTEXT.read_bytes()
    session = CachedSession(cache_name=str(path), backend="sqlite", allowable_methods=("GET",))
    response = requests.Response()
    response.status_code, response._content, response.url, response.encoding = 200, data, CONTEXT_URL, "utf-8"
    response.headers["Content-Type"] = "application/ld+json"
    response.request = requests.Request("GET", CONTEXT_URL).prepare()
    headers = dict(response.headers)
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(data), headers=headers, status=200, preload_content=False, request_url=CONTEXT_URL
    )
    session.cache.save_response(response)
    return path


def test_csv_and_parquet_keep_failures_with_their_causes(campaign, tmp_path, capsys):
    data, cid = campaign
    assert main(["export", cid, "--format", "csv", "--out", str(tmp_path / "csv"), "--data-dir", str(data)]) == 0
    assert "experiments.csv" in capsys.readouterr().out
    rows = read_csv(tmp_path / "csv" / "experiments.csv")
    with Store(data) as store:
        exps = store.experiments(cid)
        n_attempts = len(store.attempts(cid))
    assert [int(r["seq"]) for r in rows] == [e.seq for e in exps]
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(r["cause"] and r["error"] for r in failed)
    assert all(r["objective.gap_error"] for r in rows if r["status"] == "completed")
    assert {"param.CsPbBr3", "param.temperature", "metric.band_gap_eV"} <= set(rows[0])
    assert len(read_csv(tmp_path / "csv" / "attempts.csv")) == n_attempts

    assert main(["export", cid, "--format", "parquet", "--out", str(tmp_path / "pq"), "--data-dir", str(data)]) == 0
    table = pq.read_table(tmp_path / "pq" / "experiments.parquet").to_pylist()
    assert [r["experiment_id"] for r in table] == [e.id for e in exps]
    assert [r["cause"] for r in table] == [e.cause for e in exps]
    assert pq.read_table(tmp_path / "pq" / "attempts.parquet").num_rows == n_attempts


def test_rocrate_passes_the_provenance_run_crate_profile(campaign, tmp_path):
    data, cid = campaign
    out = tmp_path / "crate"
    assert main(["export", cid, "--format", "rocrate", "--out", str(out), "--data-dir", str(data)]) == 0
    cache = warm_validator_cache(tmp_path / "validator-cache")
    validator = Path(sys.executable).parent / "rocrate-validator"
    args = ["-y", "--disable-color", "validate", "--offline", "--cache-path", str(cache), "--no-paging"]
    args += ["-p", "provenance-run-crate-0.5", "-f", "json", "-o", str(tmp_path / "report.json"), str(out)]
    proc = subprocess.run([str(validator), *args], capture_output=True, text=True, check=False, timeout=300)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"], [i["message"] for i in report["issues"]] or proc.stdout[-2000:]
    assert proc.returncode == 0

    graph = {e["@id"]: e for e in json.loads((out / "ro-crate-metadata.json").read_text())["@graph"]}
    with Store(data) as store:
        exps = store.experiments(cid)
        attempts = store.attempts(cid)
    actions = [e for e in graph.values() if e["@type"] == "CreateAction" and "attempt" in e["@id"]]
    assert len(actions) == len(attempts)
    failed = [a for a in actions if a["actionStatus"].endswith("FailedActionStatus")]
    assert failed and all(a["error"].startswith("[") for a in failed)  # "[cause] message"
    proposals = [e for e in graph.values() if e["@id"].endswith("-proposal")]
    assert len(proposals) == len(exps) and all(p["instrument"] == {"@id": "#planner"} for p in proposals)
    best = min((e for e in exps if e.objectives), key=lambda e: e.objectives["gap_error"])
    assert graph[f"#{best.id}-objective-gap_error"]["value"] == best.objectives["gap_error"]
    run_files = sorted(p.name for p in (out / "runs").iterdir())
    assert len(run_files) == len([a for a in attempts if a.run_uid])
    first = json.loads((out / "runs" / run_files[0]).read_text().splitlines()[0])
    assert first[0] == "start" and first[1]["campaign_id"] == cid
    organize = next(e for e in graph.values() if e["@type"] == "OrganizeAction")
    assert organize["instrument"] == {"@id": "#labos"} and organize["result"] == {"@id": "#campaign-run"}


def test_export_mistakes_are_clear(campaign, tmp_path, capsys):
    data, _ = campaign
    assert main(["export", "nobody", "--out", str(tmp_path), "--data-dir", str(data)]) == 2
    assert "no campaign 'nobody'" in capsys.readouterr().err
    assert main(["export", "x", "--out", str(tmp_path), "--data-dir", str(tmp_path / "empty")]) == 2
    assert "no labos store" in capsys.readouterr().err
