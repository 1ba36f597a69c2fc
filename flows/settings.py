"""Prefect configuration for labos: ephemeral mode with a project-owned home.

Call :func:`configure_prefect` before Prefect is imported: Prefect reads its settings
once, at import.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def configure_prefect(home: str | Path) -> Path:
    """Point Prefect at ``home`` and set quiet, offline-friendly defaults.

    Variables the user already set are respected (``PREFECT_API_URL`` included: with
    it, flows report to that server instead of an ephemeral one).

    Raises
    ------
    RuntimeError
        If Prefect was already imported with another home.
    """
    home = Path(home).resolve()
    current = os.environ.get("PREFECT_HOME")
    if "prefect" in sys.modules and current != str(home):
        if current is None:
            os.environ["PREFECT_HOME"] = str(home)
            return home
        raise RuntimeError(f"Prefect is already configured with PREFECT_HOME={current}; cannot switch to {home}")
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    return Path(os.environ["PREFECT_HOME"])
