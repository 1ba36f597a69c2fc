"""What a person sees on the terminal: labos's own lines, never a third-party traceback for a handled event.

The finding: ~150 lines of Prefect tracebacks after a successful campaign, a Prefect and
a bluesky traceback for every final instrument fault, "Crash detected!" after a double
Ctrl-C. Each case runs the real command in its own process; the library logs go to
``<data_dir>/labos.log``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_interrupt import n_results

pytestmark = pytest.mark.e2e

NOISE = re.compile(r"Traceback|\| ERROR|\| WARNING|Crash detected|Error flushing|CancelledError|Run aborted")


def _labos(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "labos.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _clean(out: str, err: str) -> None:
    both = out + err
    assert not NOISE.search(both), both


def test_a_completed_and_a_faulty_campaign_print_only_labos_lines(demo_spec, write_yaml, tmp_path):
    demo_spec["budget"]["max_experiments"] = 6
    demo_spec["planner"] = {"name": "random", "options": {}}
    ok = write_yaml(demo_spec, "ok.yaml")
    demo_spec["workflow"]["retries"] = 0
    demo_spec["workflow"]["instruments"]["synth"]["options"] = {"faults": {"jam": 0.5, "disconnect": 0.3}}
    faulty = write_yaml(demo_spec, "faulty.yaml")
    for path, quiet in ((ok, False), (faulty, True)):
        proc = _labos(["run", str(path), *(["-q"] if quiet else [])], tmp_path)
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        _clean(out, err)
        assert "wall time" in out and "instrument time" in out and "log:" in out
        if quiet:
            assert err.strip() == "", err  # -q: the summary only
    assert (Path(demo_spec["data_dir"]) / "labos.log").stat().st_size > 0  # the faults' details went there


def test_a_double_ctrl_c_prints_no_traceback(demo_spec, write_yaml, tmp_path):
    demo_spec["simulation"]["acceleration"] = 300.0  # a few seconds per experiment: the second Ctrl-C lands mid-run
    demo_spec["budget"]["max_experiments"] = 50
    demo_spec["planner"] = {"name": "random", "options": {}}
    proc = _labos(["run", str(write_yaml(demo_spec))], tmp_path)
    try:
        deadline = time.monotonic() + 120
        while n_results(Path(demo_spec["data_dir"]) / "labos.sqlite") < 1:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    _clean(out, err)
