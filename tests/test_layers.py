"""labos imports (and validates a campaign) without Prefect.

The import layers themselves (core at the bottom, simulators never imported by the
runtime, planners knowing core models only) are import-linter contracts in
``pyproject.toml``, checked by ``make lint``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
