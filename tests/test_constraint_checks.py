"""Constraints that cannot be met are caught by ``labos validate``, each at its own line.

The finding: ``temperature >= 500`` on a 90-160 range passed validation and then crashed
``labos run`` with three raw tracebacks (skopt) or failed at run time (botorch); a
constraint naming an unknown parameter was reported at line 1.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from labos.cli import main
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.unit

DEMO = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())


def _write(tmp_path, constraints):
    spec = copy.deepcopy(DEMO)
    spec["constraints"] = constraints
    spec["data_dir"] = str(tmp_path / "data")
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(spec, sort_keys=False))
    return f


def _line(path, text):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("constraints", "at", "message"),
    [
        (
            ["temperature >= 500"],
            "temperature >= 500",
            "constraints[0]: 1*temperature >= 500 can never hold: within the parameter ranges its left side is at "
            "most 200",
        ),
        (
            ["CsPbCl3 + CsPbBr3 >= 1.5"],
            "CsPbBr3 >= 1.5",
            "constraints[0]: 1*CsPbCl3 + 1*CsPbBr3 >= 1.5 can never hold: within the parameter ranges its left "
            "side is at most 1",
        ),
        (
            ["temperature <= 150", "temperature + pressure <= 3"],
            "pressure",
            "constraints[1]: pressure not numeric parameters of the space",
        ),
        (
            ["temperature <= 100", "temperature >= 120"],
            "constraints:",
            "constraints: the constraints cannot all hold at once: 1*temperature <= 100; 1*temperature >= 120",
        ),
        (
            ["temperature >= 199.99999"],
            "constraints:",
            "constraints: the constraints leave almost no room: none of 10,000 random points of the space satisfies "
            "1*temperature >= 199.99999",
        ),
    ],
)
def test_unmeetable_constraints_are_located_errors(tmp_path, capsys, constraints, at, message):
    f = _write(tmp_path, constraints)
    assert main(["validate", str(f)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"c.yaml:{_line(f, at)}: {message}" in err, err
    assert "Traceback" not in err


def test_meetable_constraints_pass(tmp_path, capsys):
    f = _write(tmp_path, ["CsPbCl3 + CsPbI3 <= 0.6", "temperature >= 150"])
    assert main(["validate", str(f)]) == 0, capsys.readouterr().err


def test_run_refuses_an_unmeetable_constraint_before_starting(tmp_path, capsys):
    f = _write(tmp_path, ["temperature >= 500"])
    assert main(["run", str(f), "-q"]) == 2
    err = capsys.readouterr().err
    assert "can never hold" in err and "Traceback" not in err
    assert not (tmp_path / "data" / "labos.sqlite").exists()
