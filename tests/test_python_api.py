"""docs/python-api.md is real code: its examples run top to bottom, in a fresh directory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"


def test_the_python_api_page_runs(tmp_path, monkeypatch, capsys):
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "broken.yaml:" in out and "space.temperature" in out  # the located error, as validate prints it
    summary, table = namespace["summary"], namespace["table"]
    assert summary.status == "completed" and summary.n_ok == 4
    assert list(table["seq"]) == [1, 2, 3, 4] and table["objective.gap_error"].notna().all()
    assert namespace["best"]["objective.gap_error"] == pytest.approx(summary.best_value)
    assert len(namespace["planner"].observations) == 5
    assert (tmp_path / "my-data" / "labos.log").exists()  # Prefect's home: the test session's (PREFECT_HOME wins)
