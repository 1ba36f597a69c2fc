"""Architecture rules: labos imports without Prefect; runtime code never imports simulators."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("package", ["labos", "flows"])
def test_runtime_code_never_imports_simulators(package):
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / package).rglob("*.py")
        if any(m == "simulators" or m.startswith("simulators.") for m in imported_modules(p))
    ]
    assert offenders == []


def test_core_depends_on_nothing_else_in_labos():
    for p in (ROOT / "labos" / "core").rglob("*.py"):
        deps = {m for m in imported_modules(p) if m.startswith("labos.") and not m.startswith("labos.core")}
        assert deps == set(), p


def test_planners_know_core_models_only():
    allowed = ("labos.core", "labos.planners")
    for p in (ROOT / "labos" / "planners").rglob("*.py"):
        deps = {m for m in imported_modules(p) if m.startswith("labos") and not m.startswith(allowed)}
        assert deps == set(), p


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
