"""Hostile and broken campaign files: every one ends in a located error, never a traceback, a hang or gigabytes."""

from __future__ import annotations

import copy
import math
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from labos.cli import main
from labos.core.campaign import Campaign
from labos.core.errors import SpecError
from labos.core.loader import MAX_BYTES, parse_model
from labos.validate import load_campaign
from tests.conftest import EXAMPLES

DEMO = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())
SOLID = yaml.safe_load((EXAMPLES / "solid-state.yaml").read_text())

LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def _edit(base: dict[str, Any], path: str, value: Any) -> str:
    spec = copy.deepcopy(base)
    *head, last = path.split(".")
    node = spec
    for part in head:
        node = node.setdefault(part, {})
    node[last] = value
    return yaml.safe_dump(spec, sort_keys=False)


def _uvvis(options: dict[str, Any]) -> str:
    return _edit(DEMO, "workflow.instruments.uvvis.options", options)


# (text, what the one-line error must say); each of these once crashed `labos validate` or hung it
HOSTILE: dict[str, tuple[str, str]] = {
    "unhashable key": ("? [a, b]\n: 1\nname: x\n", ":1: a key must be a plain value"),
    "recursive alias": ("a: &x [*x]\n", "a[0]: a recursive alias"),
    "2,000-deep nesting": ("a: " + "[" * 2000 + "]" * 2000 + "\n", "nested more than 64 levels deep"),
    "!!int abc": ("name: !!int abc\n", "name: cannot read 'abc'"),
    "5,000-digit integer": ("seed: " + "9" * 5000 + "\n", "the integer is too large"),
    "huge but legal integer": ("seed: " + "9" * 4000 + "\n", "is too large (limit: 2**63)"),
    "billion laughs": (LAUGHS, "more than 100,000 values once aliases are expanded"),
    "wavelength step 0": (_uvvis({"wavelength_nm": [300, 800, 0]}), "options.wavelength_nm: "),
    "wavelength step 1e-7": (_uvvis({"wavelength_nm": [300, 800, 1e-7]}), "5,000,000,001 points"),
    "2-theta step 0": (
        _edit(SOLID, "workflow.instruments.beamline.options", {"two_theta_deg": [5, 45, 0]}),
        "options.two_theta_deg: instrument 'beamline': option two_theta_deg: the step must be positive",
    ),
    "robot positions a list": (
        _edit(SOLID, "workflow.instruments.robot.options.positions", [1, 2, 3]),
        "workflow.instruments.robot.options.positions: ",
    ),
    "rack of 200,000,000": (
        _edit(SOLID, "workflow.instruments.robot.options.stations.rack", 200_000_000),
        "options.stations.rack: instrument 'robot': option stations.rack: Input should be less than or equal to 1000",
    ),
    "world is a directory": (_edit(DEMO, "simulation.world", "/"), "simulation.world: / is a directory"),
    "NUL byte in data_dir": (_edit(DEMO, "data_dir", "labos\0data"), "data_dir: the path 'labos\\x00data' contains"),
    "NaN interlock": (
        _edit(SOLID, "workflow.instruments.furnace.options", {"max_temperature_c": math.nan}),
        "options.max_temperature_c: NaN is not allowed",
    ),
    "infinite interlock": (
        _edit(SOLID, "workflow.instruments.furnace.options", {"max_temperature_c": math.inf}),
        "max_temperature_c is inf: options must be finite numbers",
    ),
    "averages 1e12": (_uvvis({"averages": 10**12}), "option averages: Input should be less than or equal to 10000"),
    "acceleration 1e-300": (_edit(DEMO, "simulation.acceleration", 1e-300), "acceleration (1e-300) must lie between"),
    "NaN acceleration": (_edit(DEMO, "simulation.acceleration", math.nan), "simulation.acceleration: NaN is not"),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", list(HOSTILE))
def test_validate_answers_hostile_files_with_a_located_error(case, tmp_path, capsys):
    text, expected = HOSTILE[case]
    f = tmp_path / "c.yaml"
    f.write_text(text)
    tracemalloc.start()
    try:
        code = main(["validate", str(f)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out = capsys.readouterr()
    assert code == 2, out
    assert expected in out.err, out.err
    assert "Traceback" not in out.err + out.out
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MiB allocated"


def test_a_world_that_is_not_a_database_is_located(tmp_path, capsys):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("hello" * 1000)
    f = tmp_path / "c.yaml"
    f.write_text(_edit(DEMO, "simulation.world", str(junk)))
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    line = _line(f, "world:")
    assert f"c.yaml:{line}: simulation.world: cannot use {junk} as the sample database: file is not" in err


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_huge_file_is_refused_before_it_is_read_and_a_huge_value_is_not_echoed(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("name: '" + "x" * (MAX_BYTES + 10) + "'\n")
    assert main(["validate", str(big)]) == 2
    err = capsys.readouterr().err
    assert "a labos YAML file may be at most 1,048,576" in err and len(err) < 500
    long = tmp_path / "long.yaml"
    long.write_text(_edit(DEMO, "name", "y" * 500_000))
    assert main(["validate", str(long)]) == 2
    err = capsys.readouterr().err
    assert "(500,002 characters)" in err and len(err) < 1000


def test_non_finite_numbers_are_refused_by_the_python_api_too():
    spec = copy.deepcopy(SOLID)
    spec["workflow"]["instruments"]["furnace"]["options"] = {"max_temperature_c": float("nan")}
    with pytest.raises(ValidationError, match="max_temperature_c is nan: options must be finite numbers"):
        Campaign.model_validate(spec)
    spec = copy.deepcopy(DEMO)
    spec["workflow"]["retry_backoff_s"] = float("inf")
    with pytest.raises(ValidationError, match="finite number"):
        Campaign.model_validate(spec)


def test_an_infeasible_space_behind_a_nan_interlock_is_refused(tmp_path):
    """The original finding: NaN in max_temperature_c let a 3000-5000 degC anneal pass validation."""
    spec = copy.deepcopy(SOLID)
    spec["workflow"]["instruments"]["furnace"]["options"] = {"max_temperature_c": float("nan")}
    spec["space"]["anneal_temperature"] = {"type": "real", "low": 3000, "high": 5000}
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="NaN is not allowed"):
        load_campaign(f)
    spec["workflow"]["instruments"]["furnace"]["options"] = {}
    f.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match=r"space.anneal_temperature.high: 5000 is above furnace's limit"):
        load_campaign(f)


def test_values_that_yaml_cannot_build_are_located():
    with pytest.raises(SpecError) as info:
        parse_model(Campaign, "name: x\nseed: !!float abc\nbudget: !!binary aGVsbG8=\n", "c.yaml")
    got = [p.format("c.yaml") for p in info.value.problems]
    assert got[0].startswith("c.yaml:2: seed: cannot read 'abc'")
    assert got[1] == "c.yaml:3: budget: binary data is not accepted here"


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_validate_writes_nothing_ever(tmp_path, monkeypatch, capsys):
    """Not the data dir, not a shared world file, not the registry's store or its SQLite side files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABOS_DATA_DIR", raising=False)
    world = copy.deepcopy(DEMO)
    world["simulation"]["world"] = "lab/world.sqlite"
    (tmp_path / "shared-world.yaml").write_text(yaml.safe_dump(world))
    files = [*sorted(EXAMPLES.glob("*.yaml")), tmp_path / "shared-world.yaml"]
    before = _tree(tmp_path)
    for f in files:
        main(["validate", str(f)])
    assert _tree(tmp_path) == before, "validate created or changed files"
    err = capsys.readouterr().err
    assert "no instrument registry to look it up in" in err  # registered-lab.yaml, before any registration
    # with a registry: validate reads it and still writes nothing (no -wal/-shm either)
    for entry in sorted((EXAMPLES / "instruments").glob("*.yaml")):
        assert main(["instruments", "add", str(entry)]) == 0
    before = _tree(tmp_path)
    assert main(["validate", str(EXAMPLES / "registered-lab.yaml")]) == 0, capsys.readouterr().err
    assert _tree(tmp_path) == before
