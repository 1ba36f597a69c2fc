"""labos imports (and validates a campaign) without Prefect.

The import layers themselves (core at the bottom, simulators never imported by the
runtime, planners knowing core models only) are import-linter contracts in
``pyproject.toml``, checked by ``make lint``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_labos_imports_without_prefect():
    code = (
        "import sys; sys.modules['prefect'] = None\n"
        "import labos, labos.core, labos.planners, labos.devices, labos.data, labos.plans, labos.analysis\n"
        "import labos.session, labos.checks, labos.validate, labos.cli, labos.agents\n"
        "from labos.cli import main\n"
        "assert main(['validate', 'examples/demo.yaml']) == 0\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("example", ["demo.yaml", "solid-state.yaml", "two-objectives.yaml"])
def test_validate_imports_no_device_flow_or_model_library(example):
    """``labos validate`` answers in about a second: it checks drivers, not ophyd devices, and options, not torch."""
    code = (
        "import sys\n"
        "from labos.cli import main\n"
        f"assert main(['validate', 'examples/{example}']) == 0\n"
        "heavy = sorted(m for m in ('ophyd', 'bluesky', 'prefect', 'torch', 'tiled') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_planner_traits_declared_without_import_match_the_classes():
    from labos.planners import registry

    for name, (path, multi) in registry._TRAITS.items():
        cls = registry.get_planner_class(name)
        assert path == f"{cls.Options.__module__}:{cls.Options.__qualname__}"
        assert multi == cls.multi_objective
        assert registry.planner_traits(name) == (cls.Options, multi)
