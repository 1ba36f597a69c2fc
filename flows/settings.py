"""Prefect configuration for labos: ephemeral mode with a project-owned home.

Call :func:`configure_prefect` before Prefect is imported: Prefect reads its settings
once, at import.
"""

from __future__ import annotations

import os
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

    Variables the user already set win: an existing ``PREFECT_HOME`` is kept, and with
    ``PREFECT_API_URL`` set flows report to that server instead of an ephemeral one.
    Returns the Prefect home in effect.
    """
    home = Path(home).resolve()
    os.environ.setdefault("PREFECT_HOME", str(home))
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    effective = Path(os.environ["PREFECT_HOME"])
    effective.mkdir(parents=True, exist_ok=True)
    return effective
