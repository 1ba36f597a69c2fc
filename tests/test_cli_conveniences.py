"""Small things a new user reaches for: --version, planner options, instrument inputs, --data-dir anywhere."""

from __future__ import annotations

import json

import pytest

from labos import __version__
from labos.cli import main
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.unit


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"labos {__version__}"


def test_a_planners_options_with_types_defaults_and_descriptions(capsys):
    assert main(["planners", "botorch"]) == 0
    out = capsys.readouterr().out
    assert "acquisition" in out and "one of 'ucb', 'logei', 'qlognei'" in out and "UCB exploration weight" in out
    assert "allow_repeats" in out
    assert main(["planners", "nope"]) == 2
    assert "unknown planner 'nope'" in capsys.readouterr().err


def test_instruments_inputs_show_and_data_dir_after_the_action(tmp_path, capsys):
    d = str(tmp_path / "d")
    assert main(["instruments", "list", "--data-dir", d]) == 2  # no store: an error, not a new empty store
    assert "no labos store in" in capsys.readouterr().err and not (tmp_path / "d").exists()
    assert main(["instruments", "add", str(EXAMPLES / "instruments" / "synth-1.yaml"), "--data-dir", d]) == 0
    assert main(["instruments", "inputs", "synth-1", "--data-dir", d]) == 0
    out = capsys.readouterr().out
    assert "temperature" in out and "200" in out and "degC" in out  # the registry's 200 degC, not the driver's 220
    assert main(["instruments", "--data-dir", d, "show", "synth-1"]) == 0
    out = capsys.readouterr().out
    assert "capabilities: hot-injection, halide-perovskites" in out and "maintenance log:" in out
    assert main(["instruments", "show", "synth-1", "--json", "--data-dir", d]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "synth-1"
