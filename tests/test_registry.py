"""The instrument registry: operators register and maintain; campaigns only use what is enabled."""

from __future__ import annotations

import copy
import socket

import pytest
import yaml

from labos.cli import main
from labos.core.errors import SpecError
from labos.data.store import Store
from labos.devices.keys import generate
from labos.validate import load_campaign
from tests.conftest import EXAMPLES


@pytest.fixture
def data(tmp_path, capsys):
    d = tmp_path / "data"
    assert (
        main(["instruments", "--data-dir", str(d), "add", *map(str, sorted((EXAMPLES / "instruments").glob("*.yaml")))])
        == 0
    )
    capsys.readouterr()
    return d


@pytest.fixture
def registered_spec(demo_spec_master, data):
    spec = yaml.safe_load((EXAMPLES / "registered-lab.yaml").read_text())
    spec["data_dir"] = str(data)
    spec["simulation"]["acceleration"] = float("inf")
    return spec


def test_operator_commands(data, capsys, monkeypatch):
    monkeypatch.setenv("LABOS_OPERATOR", "Ada <ada@example.org>")
    assert main(["instruments", "--data-dir", str(data), "list"]) == 0
    out = capsys.readouterr().out
    assert "synth-1" in out and "uvvis-1" in out and "Optics team" in out
    assert main(["instruments", "--data-dir", str(data), "status"]) == 0
    assert capsys.readouterr().out.count(" ok ") == 2
    assert main(["instruments", "--data-dir", str(data), "disable", "uvvis-1", "--reason", "lamp replacement"]) == 0
    assert main(["instruments", "--data-dir", str(data), "show", "uvvis-1"]) == 0
    out = capsys.readouterr().out
    assert "disabled: lamp replacement" in out and "added by " in out
    assert "disabled by Ada <ada@example.org>: lamp replacement" in out  # the log records who
    assert main(["instruments", "--data-dir", str(data), "add", str(EXAMPLES / "instruments" / "uvvis-1.yaml")]) == 2
    assert "already registered" in capsys.readouterr().err
    assert main(["instruments", "--data-dir", str(data), "remove", "nope"]) == 2
    assert "no instrument 'nope' in the registry" in capsys.readouterr().err
    assert main(["instruments", "--data-dir", str(data), "remove", "uvvis-1"]) == 0
    assert "uvvis-1 removed" in capsys.readouterr().out
    assert main(["instruments", "--data-dir", str(data), "list"]) == 0
    assert "uvvis-1" not in capsys.readouterr().out


def test_campaigns_use_only_enabled_instruments(registered_spec, write_yaml, data, capsys):
    path = write_yaml(registered_spec)
    assert load_campaign(path).name == "perovskite-bandgap-registered"
    assert main(["instruments", "--data-dir", str(data), "disable", "uvvis-1", "--reason", "lamp replacement"]) == 0
    with pytest.raises(SpecError) as info:
        load_campaign(path)
    (problem,) = info.value.problems
    assert problem.path == "workflow.instruments.uvvis"
    assert "no enabled uvvis instrument with capabilities ['band-gap']" in problem.message
    assert "uvvis-1 (lamp replacement)" in problem.message
    assert problem.line is not None
    assert main(["instruments", "--data-dir", str(data), "enable", "uvvis-1"]) == 0
    assert load_campaign(path).name == "perovskite-bandgap-registered"


def test_missing_capability_and_registry_limits(registered_spec, write_yaml):
    spec = copy.deepcopy(registered_spec)
    spec["workflow"]["instruments"]["uvvis"]["options"] = {"capabilities": ["photoluminescence"]}
    with pytest.raises(SpecError, match=r"no enabled uvvis instrument with capabilities \['photoluminescence'\]"):
        load_campaign(write_yaml(spec))
    spec = copy.deepcopy(registered_spec)
    spec["workflow"]["steps"][1]["options"] = {"integration_time": 8}  # hardware allows 10 s, the registry 5 s
    spec["space"]["temperature"]["high"] = 210  # controller allows 220, the registry 200
    with pytest.raises(SpecError) as info:
        load_campaign(write_yaml(spec))
    text = str(info.value)
    assert "integration_time: uvvis: 8 s is above the limit 5 s" in text
    assert "space.temperature.high: 210 is above synth's limit for temperature (200 degC)" in text


@pytest.mark.e2e
def test_a_registered_campaign_runs(registered_spec):
    from flows.campaign import run_campaign

    registered_spec["budget"]["max_experiments"] = 4
    summary = run_campaign(registered_spec, data_dir=registered_spec["data_dir"], plot=False)
    assert summary.status == "completed" and summary.n_ok == 4
    with Store(summary.store) as store:
        prov = store.find_campaign(summary.campaign_id).provenance
    assert prov["seed"] == registered_spec.get("seed", 0) and prov["user"]
    registry = prov["registry"]  # the entries in force when the campaign started, calibrations included
    assert registry and all("calibration" in r["entry"] for r in registry.values())


def test_status_reports_an_unreachable_instrument(data, tmp_path, capsys):
    generate(tmp_path / "keys", "server")
    generate(tmp_path / "keys", "client")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = {
        "name": "uvvis-remote",
        "kind": "uvvis",
        "driver": "zmq",
        "options": {
            "endpoint": f"tcp://127.0.0.1:{port}",
            "server_key": str(tmp_path / "keys" / "server.key"),
            "client_key": str(tmp_path / "keys" / "client.key_secret"),
            "timeout_s": 0.3,
        },
        "owner": "ops",
    }
    f = tmp_path / "remote.yaml"
    f.write_text(yaml.safe_dump(entry))
    assert main(["instruments", "--data-dir", str(data), "add", str(f)]) == 0
    assert main(["instruments", "--data-dir", str(data), "status"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "no reply from" in out


def test_bad_registry_files(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nkind: xrd\nowner: me\ncolour: red\n")
    assert main(["instruments", "--data-dir", str(tmp_path / "d"), "add", str(f)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:4: colour: unknown key 'colour'" in err
    f.write_text("name: x\nkind: laser\nowner: me\n")
    assert main(["instruments", "--data-dir", str(tmp_path / "d"), "add", str(f)]) == 2
    assert (
        "bad.yaml:2: kind: unknown kind 'laser'; known: synthesizer, uvvis, robot, furnace, xrd"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ("{integration_time: {low: 5, high: 1}}", "low (5) is above high (1)"),
        ("{integration_time: {high: .nan}}", "finite number"),
    ],
)
def test_registry_limits_must_be_ordered_finite_numbers(tmp_path, capsys, limits, message):
    f = tmp_path / "uvvis.yaml"
    f.write_text(f"name: u1\nkind: uvvis\nowner: me\nlimits: {limits}\n")
    assert main(["instruments", "--data-dir", str(tmp_path / "d"), "add", str(f)]) == 2
    err = capsys.readouterr().err
    assert "uvvis.yaml:4:" in err and message in err and "Traceback" not in err


def test_add_refuses_limits_on_inputs_the_instrument_lacks_and_update_logs_changes(tmp_path, capsys):
    d = tmp_path / "d"
    f = tmp_path / "u1.yaml"
    f.write_text("name: u1\nkind: uvvis\nowner: me\nlimits: {exposure: {high: 5}}\n")
    assert main(["instruments", "--data-dir", str(d), "add", str(f)]) == 2
    err = capsys.readouterr().err
    assert "u1.yaml: registry limits for 'u1' name unknown inputs: ['exposure']" in err and "Traceback" not in err
    f.write_text("name: u1\nkind: uvvis\nowner: me\nlimits: {integration_time: {high: 5}}\n")
    assert main(["instruments", "--data-dir", str(d), "add", str(f)]) == 0
    f.write_text("name: u1\nkind: uvvis\nowner: me\nlimits: {integration_time: {high: 2}}\nlocation: lab 3\n")
    assert main(["instruments", "--data-dir", str(d), "update", str(f)]) == 0
    assert "u1: updated limits, location" in capsys.readouterr().out
    assert main(["instruments", "--data-dir", str(d), "update", str(f)]) == 0
    assert "u1: unchanged" in capsys.readouterr().out
    assert main(["instruments", "--data-dir", str(d), "show", "u1"]) == 0
    out = capsys.readouterr().out
    assert '"high": 2.0' in out and "updated by" in out and "limits, location" in out
    f.write_text("name: u1\nkind: xrd\nowner: me\n")
    assert main(["instruments", "--data-dir", str(d), "update", str(f)]) == 2
    assert "is a uvvis; an entry of kind 'xrd' is a new instrument" in capsys.readouterr().err
    ghost = tmp_path / "ghost.yaml"
    ghost.write_text("name: ghost\nkind: uvvis\nowner: me\n")
    assert main(["instruments", "--data-dir", str(d), "update", str(ghost)]) == 2


def test_registry_limits_outside_the_instruments_range_are_refused_by_line(tmp_path, capsys):
    """Found by the fuzz test: ``high: false`` became 0 and the empty range ended in a traceback."""
    entry = yaml.safe_load((EXAMPLES / "instruments" / "synth-1.yaml").read_text())
    for limits, message in [
        ({"temperature": {"high": False}}, "temperature.high: Input should be a valid number"),
        (
            {"temperature": {"high": 5}},
            "temperature limits (low -, high 5) leave nothing of the instrument's own range",
        ),
    ]:
        f = tmp_path / "e.yaml"
        f.write_text(yaml.safe_dump({**entry, "limits": limits}))
        assert main(["instruments", "--data-dir", str(tmp_path / "d"), "add", str(f)]) == 2
        assert message in capsys.readouterr().err
