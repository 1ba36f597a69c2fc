"""The README's table of exit codes, walked: 0 success, 1 the campaign stopped or failed, 2 a user mistake or a
store problem (130, interrupted, is walked in test_interrupt)."""

from __future__ import annotations

import copy

import pytest
import yaml

from labos.cli import main
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.e2e


def test_the_readme_states_the_table_walked_here():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (
        "Exit codes of `labos`: 0 success, 1 the campaign stopped or failed (its record is kept), 2 a user mistake "
        "(bad campaign file, unknown campaign or option) or a store problem (corrupt, newer, full), 130 interrupted."
    ) in readme


def test_exit_codes(demo_spec, write_yaml, tmp_path, capsys):
    data = tmp_path / "data"
    # 0: a good file checks and a campaign completes
    assert main(["validate", str(EXAMPLES / "demo.yaml")]) == 0
    ok = copy.deepcopy(demo_spec)
    ok["budget"]["max_experiments"] = 2
    ok["planner"] = {"name": "random", "options": {}}
    assert main(["run", str(write_yaml(ok, "ok.yaml")), "-q", "--data-dir", str(data)]) == 0
    # 1: a campaign that fails at run time (its planner runs out of untried points), its record kept
    tiny = copy.deepcopy(ok)
    tiny["space"] = {"ligand": ok["space"]["ligand"]}
    tiny["workflow"]["steps"][0]["options"] = {"reaction_time": 60.0, "temperature": 120.0, "CsPbBr3": 1.0}
    tiny["budget"]["max_experiments"] = 5
    capsys.readouterr()
    assert main(["run", str(write_yaml(tiny, "tiny.yaml")), "-q", "--data-dir", str(data)]) == 1
    out = capsys.readouterr().out
    assert "failed - 3 ok" in out and "error: planner 'random': every point it can find has been tried" in out
    # 2: user mistakes
    bad = copy.deepcopy(ok)
    bad["planner"]["options"] = {"colour": "red"}
    assert main(["validate", str(write_yaml(bad, "bad.yaml"))]) == 2
    assert main(["run", str(write_yaml(bad, "bad.yaml")), "-q"]) == 2
    assert main(["show", "no-such-campaign", "--data-dir", str(data)]) == 2
    assert main(["planners", "no-such-planner"]) == 2
    assert main(["show", "--data-dir", str(tmp_path / "nowhere")]) == 2
    # 2: a store problem
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "labos.sqlite").write_bytes(b"not a database" * 100)
    assert main(["show", "--data-dir", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "file is not a database" in err


def test_a_yaml_file_that_is_not_a_campaign_is_a_user_mistake(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text(yaml.safe_dump([1, 2, 3]))
    assert main(["validate", str(f)]) == 2


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("LABOS_LEASE_S", "abc", "valid number"),
        ("LABOS_LEASE_S", "0", "greater than 0"),
        ("LABOS_THREADS", "x", "integer"),
    ],
)
def test_a_setting_it_cannot_take_is_a_user_mistake_not_a_traceback(monkeypatch, capsys, variable, value, says):
    monkeypatch.setenv(variable, value)
    assert main(["planners"]) == 2
    err = capsys.readouterr().err
    assert f"error: {variable}='{value}'" in err and says in err and "Traceback" not in err
